#!/usr/bin/env python
"""Write a single-task teacher's pseudo labels for the images of a training set that lack its task.

    python tools/generate_pseudo_labels.py --config-file TEACHER.yaml \\
        --dataset bdd100k_disjoint_normal_train [--output ROOT] [--num-gpus N] [--limit K] \\
        MODEL.WEIGHTS teacher/model_final.pth [KEY VALUE ...]

Labels go to ROOT (default ``$DETECTRON2_DATASETS/bdd100k/pseudo/<setting>`` for a dataset named
``bdd100k_<setting>_train``) in BDD100K's layout (lv_adapter/data/pseudo_labels.py); the
formats and the confidence measure are described in lv_adapter/engine/pseudo_labeler.py.

* Only from a teacher that never saw the labels it replaces: a teacher whose training images
  labeled for its task (``DATASETS.TRAIN`` of its config, and of the ``config.yaml`` beside its
  weights) include an image to label is refused; ``--allow-overlap`` lets it through, recorded.
* One teacher per root: ``teacher_<task>.json`` records the teacher (weights sha256, config with
  the overrides, threshold) before the first image; a run with another teacher refuses, naming
  what differs.
* Resumable: run the same command again after a kill; labeled images are skipped.
* ``summary_<task>.json`` is written last; a command whose summary already exists (same teacher,
  dataset and ``--limit``) says so and exits; ``--force`` deletes the task's pseudo labels and
  starts over.
* ``--num-gpus N`` runs N processes (GLOO on the CPU); image i goes to process i % N.
"""
import argparse
import hashlib
import json
import logging
import os
import re
import time

import lv_adapter  # noqa: F401  (first: sets up detectron2 before the data modules import it)
from detectron2.data import DatasetCatalog
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

from lv_adapter import compat
from lv_adapter.config import build_config
from lv_adapter.data.pseudo_labels import default_pseudo_root, summary_path
from lv_adapter.data.splits import SETTINGS
from lv_adapter.engine.pseudo_labeler import (
    PseudoLabeler,
    output_path,
    rank_share,
    records_lacking,
    teacher_task,
)
from lv_adapter.engine.pseudo_provenance import (
    check_no_overlap,
    check_same_teacher,
    teacher_identity,
    write_identity,
)
from lv_adapter.engine.pseudo_summary import (
    finish,
    has_outputs,
    read_summary,
    remove_outputs,
    remove_parts,
    remove_stale_outputs,
    weak_label_warnings,
)
from lv_adapter.projects import import_projects
from lv_adapter.tasks import get_task
from lv_adapter.utils.cli import check_writable_folder, config_tool_parser, parse_config_tool_args

logger = logging.getLogger("lv_adapter.pseudo_labels")


def parse_args(argv=None):
    parser = config_tool_parser(__doc__, config_help="the teacher's config (one task)")
    parser.add_argument("--dataset", required=True, help="registered training set to label")
    parser.add_argument("--output", help="pseudo-label root (default: see above)")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes (GPUs or CPU)")
    parser.add_argument("--dist-url", default="auto")
    parser.add_argument("--limit", type=int, help="label only the first K images lacking the task")
    parser.add_argument("--force", action="store_true", help="delete this task's labels first")
    parser.add_argument("--allow-overlap", action="store_true",
                        help="label images whose ground truth the teacher trained on (recorded)")
    # Testing hook: end each process abruptly (os._exit) after it wrote this many images.
    parser.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)
    args = parse_config_tool_args(parser, argv)
    if args.num_gpus < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--num-gpus and --limit must be >= 1")
    import_projects(args.project)
    return args


def output_root(args):
    """``--output``, or the default root of the setting named by ``--dataset``."""
    if args.output:
        return args.output
    match = re.fullmatch(r"bdd100k_(\w+)_train", args.dataset)
    if not match or match.group(1) not in SETTINGS:
        raise ValueError(
            f"--output is needed: no default pseudo-label root for dataset {args.dataset!r} "
            f"(defaults exist for bdd100k_<setting>_train, setting one of {sorted(SETTINGS)})"
        )
    return default_pseudo_root(os.environ.get("DETECTRON2_DATASETS", "datasets"), match.group(1))


def load_config(args):
    """The teacher's config; refuses several tasks and a MODEL.WEIGHTS file that is missing."""
    cfg = build_config(args.config_file, args.opts)
    teacher_task(cfg)
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise ValueError("MODEL.WEIGHTS is empty: give the teacher's trained checkpoint")
    if "://" not in weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"MODEL.WEIGHTS: teacher checkpoint {weights} not found")
    cfg.freeze()
    return cfg


def select_records(args, task):
    """The records of ``--dataset`` lacking ``task`` (the first ``--limit``)."""
    if args.dataset not in DatasetCatalog.list():
        known = sorted(n for n in DatasetCatalog.list() if n.startswith("bdd100k"))
        raise KeyError(f"--dataset {args.dataset!r} is not registered; registered: {known}")
    records = records_lacking(DatasetCatalog.get(args.dataset), task)
    return records[: args.limit] if args.limit else records


def main(argv=None):
    """Label what is left to label; return the summary (None when there is nothing to do)."""
    args = parse_args(argv)
    _setup_logger()
    cfg = load_config(args)
    task, root = teacher_task(cfg), output_root(args)
    check_writable_folder(root, "--output")
    records = select_records(args, task)
    if not records:
        print(f"nothing to do: every image of {args.dataset} is labeled for {task}")
        return None
    overlap = check_no_overlap(cfg, task, records, args.dataset, args.allow_overlap)
    identity = teacher_identity(cfg, task, args.config_file, overlap)
    if args.force:
        remove_outputs(root, task)
    check_same_teacher(root, identity, has_outputs(root, task))
    done = read_summary(root, task)
    selection = (args.dataset, args.limit, _ids_digest(records))
    if done and (done.get("dataset"), done.get("limit"), done.get("image_ids_sha256")) == selection:
        print(f"{task} pseudo labels in {root} are complete ({summary_path(root, task)}); "
              "nothing to do (--force relabels)")
        remove_parts(root, task)  # a run killed between the summary and the clean-up
        return done
    if done:  # a summary of another selection: its presence must not mark this one complete
        os.remove(summary_path(root, task))
    compat.launch(label_images, args.num_gpus, dist_url=args.dist_url,
                  args=(args, root, records, identity))
    return read_summary(root, task)


def label_images(args, root, records, identity):
    """One process's share of the work (image i to process i % N); the main process records the
    teacher once its weights have loaded, before any image, and finishes."""
    import_projects(args.project)  # again in a process of --num-gpus, which starts bare
    cfg = load_config(args)
    _setup_logger()
    labeler = PseudoLabeler(cfg)
    if comm.is_main_process():
        write_identity(root, identity)
        removed = remove_stale_outputs(root, labeler.task)
        if removed:
            logger.info(f"Removed {len(removed)} temporary file(s) of an interrupted run")
    comm.synchronize()
    mine = rank_share(records)
    todo = [r for r in mine if not os.path.isfile(output_path(root, labeler.task, r["image_id"]))]
    bar = tqdm(total=len(todo), unit="img", disable=not comm.is_main_process(),
               desc=f"{labeler.task} pseudo labels (process 0 of {comm.get_world_size()})")
    start = time.perf_counter()
    labeler.label(todo, root, progress=bar.update, stop_after=args.stop_after)
    seconds = time.perf_counter() - start
    bar.close()
    # tools/benchmark_pseudo_labels.py reads the counts and times of this line
    print(f"process {comm.get_rank()}: labeled {len(todo)} images in {seconds:.2f} s "
          f"({len(mine) - len(todo)} of its {len(mine)} were already labeled)", flush=True)
    comm.synchronize()
    if comm.is_main_process():
        ids = [r["image_id"] for r in records]
        summary = finish(root, labeler.task, ids, about(args, cfg, records))
        print(json.dumps(summary, indent=2))
        for warning in weak_label_warnings(summary):
            print(f"WARNING: {warning}", flush=True)


def _ids_digest(records):
    """Which images were selected (a split drawn anew selects others under the same name)."""
    ids = "\n".join(sorted(r["image_id"] for r in records))
    return hashlib.sha256(ids.encode("utf-8")).hexdigest()


def _setup_logger():
    # The same arguments in main and in the one process of --num-gpus 1: detectron2 caches the
    # call, so the handlers are added once.
    setup_logger(name="lv_adapter", distributed_rank=comm.get_rank())


def about(args, cfg, records):
    """What produced the labels, for the summary (no times: reruns must give the same bytes)."""
    key = get_task(teacher_task(cfg)).threshold_key
    return {
        "dataset": args.dataset,
        "limit": args.limit,
        "teacher_config": os.path.abspath(args.config_file),
        "teacher_weights": cfg.MODEL.WEIGHTS,
        "threshold": {f"PSEUDO_LABELS.{key}": cfg.PSEUDO_LABELS[key]},
        "allow_overlap": args.allow_overlap,
        "image_ids_sha256": _ids_digest(records),
    }


if __name__ == "__main__":
    main()
