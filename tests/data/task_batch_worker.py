"""Run inside the training processes that test_task_strategies.py starts with compat.launch.

It must not import conftest: a spawned process that did would point DETECTRON2_DATASETS at a new,
empty folder.
"""
import itertools
import json
import os

from detectron2.utils import comm

import train_net


def record_batches(args, out_dir, num_batches):
    """Write ``batches.rank<r>.json``: per batch of train_net's training loader in this process,
    ``[image_id, labeled_tasks]`` of each image."""
    cfg = train_net.setup(args)
    loader = train_net.Trainer.build_train_loader(cfg)
    rows = [[[x["image_id"], list(x["labeled_tasks"])] for x in batch]
            for batch in itertools.islice(iter(loader), num_batches)]
    with open(os.path.join(out_dir, f"batches.rank{comm.get_rank()}.json"), "w") as f:
        json.dump(rows, f)
