"""The optimizer: SGD's momentum whatever the clipping, and no step for a head whose task no
image of the batch is labeled for."""
import os

import pytest
import torch

import train_net
from conftest import REPO
from lv_adapter import build_config
from lv_adapter.tasks import BUILTIN_TASKS

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


@pytest.mark.parametrize("clipping", [
    ["SOLVER.CLIP_GRADIENTS.ENABLED", "False"],
    ["SOLVER.CLIP_GRADIENTS.ENABLED", "True", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "full_model"],
    ["SOLVER.CLIP_GRADIENTS.ENABLED", "True", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "value"],
    ["SOLVER.CLIP_GRADIENTS.ENABLED", "True", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "norm"],
])
def test_sgd_gets_its_momentum_with_and_without_clipping(clipping):
    cfg = build_config(TINY, ["SOLVER.OPTIMIZER", "SGD", "SOLVER.MOMENTUM", "0.8", *clipping])
    model = train_net.Trainer.build_model(cfg)
    optimizer = train_net.Trainer.build_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.SGD)
    assert {group["momentum"] for group in optimizer.param_groups} == {0.8}


def head_weights(path, task):
    model = torch.load(path, weights_only=False)["model"]
    return {k: v for k, v in model.items() if k.startswith(f"heads.{task}.")}


def changed(before, after):
    return any(not torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("optimizer", ["ADAMW", "SGD"])
def test_round_robin_moves_only_the_head_of_the_iterations_task(sample_root, tmp_path, optimizer):
    """Each iteration trains one task; the other heads stay bit-identical (no weight decay, no
    momentum from their earlier iterations)."""
    out = tmp_path / "run"
    argv = ["--config-file", TINY, "DATALOADER.TASK_STRATEGY", "round_robin",
            "SOLVER.OPTIMIZER", optimizer, "SOLVER.MAX_ITER", "7", "SOLVER.CHECKPOINT_PERIOD", "1",
            "SOLVER.WARMUP_ITERS", "0", "DATASETS.TEST", "()", "OUTPUT_DIR", str(out)]
    train_net.main(train_net.default_argument_parser().parse_args(argv))
    paths = [out / f"model_{i:07d}.pth" for i in range(6)] + [out / "model_final.pth"]
    trained = []
    for before, after in zip(paths, paths[1:]):
        moved = [t for t in BUILTIN_TASKS
                 if changed(head_weights(before, t), head_weights(after, t))]
        assert len(moved) == 1, (after.name, moved)
        trained += moved
    # every task had its iterations, twice each (the round-robin cycles): momentum from the
    # first visit did not move a head on the other tasks' iterations
    assert sorted(trained) == sorted(list(BUILTIN_TASKS) * 2)
