"""Losses under several processes: DistributedDataParallel averages the processes' gradients, so
the mean of their losses must be the loss of one process on the union of their batches, also
when a process's batch lacks a task."""
import datetime
import os
import pickle
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from lv_adapter import build_config
from lv_adapter.data import MultiTaskDatasetMapper

from conftest import REPO

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
OPTS = [
    "MODEL.TASKS", "['semantic', 'drivable']",
    # Batch statistics and dropout would differ between the union batch and its parts.
    "MODEL.RESNETS.NORM", "FrozenBN",
    "MODEL.SEMANTIC_HEAD.DROPOUT", "0.0",
    "MODEL.DRIVABLE_HEAD.DROPOUT", "0.0",
]


@pytest.fixture(scope="module")
def batches(sample_root):
    """Process 0: two images labeled for semantics (one also for drivable area); process 1: one
    image labeled for drivable area only, so its batch lacks the semantic task."""
    cfg = build_config(TINY, OPTS)
    cfg.INPUT.RANDOM_FLIP = "none"
    mapper = MultiTaskDatasetMapper(cfg, is_train=True)
    dicts = DatasetCatalog.get("bdd100k_multitask_train")
    full = next(d for d in dicts if len(d["labeled_tasks"]) == 3)
    semantic = next(d for d in dicts if d["labeled_tasks"] == ["semantic"])
    drivable = next(d for d in dicts if "semantic" not in d["labeled_tasks"]
                    and "drivable" in d["labeled_tasks"])
    return [[mapper(full), mapper(semantic)], [mapper(drivable)]]


def _losses_and_grads(model, batch):
    model.zero_grad()
    losses = model(batch)
    sum(losses.values()).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.item() for k, v in losses.items()}, grads


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world_size, port, model, batches, out_dir):
    # The OpenMP thread pool does not survive a fork: a forked child that enters a parallel
    # region of the parent's pool can hang.
    torch.set_num_threads(1)
    # The timeout turns a process missing from a collective call into an error, not a hang.
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=world_size, timeout=datetime.timedelta(seconds=60))
    try:
        result = _losses_and_grads(model, batches[rank])
        with open(os.path.join(out_dir, f"rank{rank}.pkl"), "wb") as f:
            pickle.dump(result, f)
    finally:
        dist.destroy_process_group()


def test_two_processes_average_to_the_single_process_loss_on_the_union(batches, tmp_path):
    torch.manual_seed(0)
    model = build_model(build_config(TINY, OPTS)).train()
    single_losses, single_grads = _losses_and_grads(model, batches[0] + batches[1])
    # fork: the workers share the model's weights and skip re-importing torch and detectron2.
    mp.start_processes(_worker, args=(2, _free_port(), model, batches, str(tmp_path)), nprocs=2,
                       start_method="fork")
    results = []
    for rank in range(2):
        with open(tmp_path / f"rank{rank}.pkl", "rb") as f:
            results.append(pickle.load(f))
    (losses0, grads0), (losses1, grads1) = results
    assert losses1["loss_semantic_class"] == 0.0  # process 1 has no semantic image
    assert losses0.keys() == losses1.keys() == single_losses.keys()
    for key, value in single_losses.items():
        assert (losses0[key] + losses1[key]) / 2 == pytest.approx(value, rel=1e-4), key
    # DDP's averaged gradient. Summation orders differ, and some gradients are ~0 up to rounding
    # (biases right before a GroupNorm), so the tolerance is relative to the largest gradient.
    scale = max(grad.abs().max() for grad in single_grads.values())
    for name, grad in single_grads.items():
        torch.testing.assert_close((grads0[name] + grads1[name]) / 2, grad, rtol=1e-3,
                                   atol=1e-4 * scale, msg=name)
