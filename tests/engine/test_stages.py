"""Pretrain-adapt-finetune through train_net.py: what the adapt stage freezes, switch, resume."""
import os
import shutil
import subprocess
import sys

import pytest
import torch
from detectron2.engine import HookBase, default_argument_parser
from detectron2.modeling import build_model
from torch import nn

import train_net
from conftest import REPO
from lv_adapter import build_config
from lv_adapter.engine import SafeCheckpointer
from lv_adapter.engine.stages import ADAPT, FINETUNE, build_stage_hooks, set_stage, stage_at

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
RESNET = "backbone.bottom_up."


def args_for(output_dir, *opts, resume=False):
    argv = ["--config-file", TINY, *(["--resume"] if resume else []),
            "OUTPUT_DIR", str(output_dir), "MODEL.DEVICE", "cpu", *opts]
    return default_argument_parser().parse_args(argv)


def load(path):
    return torch.load(path, weights_only=False)["model"]


def part(state, prefix, exclude=()):
    return {k: v for k, v in state.items()
            if k.startswith(prefix) and not k.startswith(tuple(exclude))}


def changed(before, after):
    """Names of the tensors that differ (bit for bit)."""
    assert before.keys() == after.keys()
    return {k for k in before if not torch.equal(before[k], after[k])}


@pytest.fixture(scope="module")
def init_weights(sample_root, tmp_path_factory):
    """Random initial weights of the tiny model (ResNet-18 with BN: statistics to watch)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("init")
    SafeCheckpointer(build_model(build_config(TINY)), save_dir=str(folder)).save("init")
    return str(folder / "init.pth")


@pytest.fixture(scope="module")
def adapt_run(init_weights, tmp_path_factory):
    """4 iterations: 0-2 adapt, 3 finetune; a checkpoint after each; an evaluation after
    iteration 1, in the middle of the adapt stage."""
    out = tmp_path_factory.mktemp("adapt")
    train_net.main(args_for(
        out, "MODEL.WEIGHTS", init_weights, "SOLVER.ADAPT_ITERS", "3", "SOLVER.MAX_ITER", "4",
        "SOLVER.CHECKPOINT_PERIOD", "1", "TEST.EVAL_PERIOD", "2",
    ))
    return out


def test_stage_is_a_function_of_the_iteration():
    assert [stage_at(i, 2) for i in range(4)] == [ADAPT, ADAPT, FINETUNE, FINETUNE]
    assert stage_at(0, 0) == FINETUNE


def test_adapt_stage_leaves_the_resnet_and_its_statistics_untouched(init_weights, adapt_run):
    init = load(init_weights)
    after_adapt = load(adapt_run / "model_0000002.pth")  # iterations 0, 1, 2 done
    # Weights, BN running statistics and num_batches_tracked: bit-identical, although an
    # evaluation (which puts the model back into train mode) ran after iteration 1.
    assert not changed(part(init, RESNET), part(after_adapt, RESNET))
    assert any(k.endswith("running_mean") for k in part(init, RESNET))
    # Everything after the ResNet learned: every FPN conv and every head.
    learned = changed(part(init, "backbone.", [RESNET]), part(after_adapt, "backbone.", [RESNET]))
    assert {k for k in part(init, "backbone.fpn_") if k.endswith("weight")} <= learned
    for task in ("detection", "semantic", "drivable"):
        assert changed(part(init, f"heads.{task}."), part(after_adapt, f"heads.{task}."))


def test_finetune_stage_trains_the_resnet(adapt_run):
    after_adapt = load(adapt_run / "model_0000002.pth")
    final = load(adapt_run / "model_final.pth")  # + iteration 3, the first of the finetune stage
    resnet_changed = changed(part(after_adapt, RESNET), part(final, RESNET))
    weights = {k for k in part(final, RESNET) if k.endswith(".weight") and "norm" not in k}
    assert weights <= resnet_changed  # every conv of the ResNet learned
    assert any(k.endswith("running_mean") for k in resnet_changed)  # BN learns statistics again


def test_the_switch_is_logged(adapt_run):
    log = (adapt_run / "log.txt").read_text()
    assert "starting at iteration 0 in the adapt stage" in log
    switch = log.index("Iteration 3: the adapt stage ends, the finetune stage begins")
    assert 0 < log.find("copypaste: ") < switch  # the evaluation in the adapt stage ran


def resume_from(run, checkpoint, tmp_path, max_iter):
    """Resume ``run`` at ``checkpoint`` (a copy, so the module's run stays as it is)."""
    shutil.copy(run / checkpoint, tmp_path / checkpoint)
    (tmp_path / "last_checkpoint").write_text(checkpoint)
    train_net.main(args_for(
        tmp_path, "SOLVER.ADAPT_ITERS", "3", "SOLVER.MAX_ITER", str(max_iter),
        "DATASETS.TEST", "()", resume=True,
    ))
    return load(tmp_path / checkpoint), load(tmp_path / "model_final.pth")


def test_resume_inside_the_adapt_stage_keeps_the_resnet_frozen(adapt_run, tmp_path):
    start, final = resume_from(adapt_run, "model_0000001.pth", tmp_path, max_iter=3)  # runs 2
    assert not changed(part(start, RESNET), part(final, RESNET))
    assert changed(part(start, "heads."), part(final, "heads."))
    assert "starting at iteration 2 in the adapt stage" in (tmp_path / "log.txt").read_text()


def test_resume_after_the_switch_trains_the_resnet(adapt_run, tmp_path):
    start, final = resume_from(adapt_run, "model_0000002.pth", tmp_path, max_iter=4)  # runs 3
    assert changed(part(start, RESNET), part(final, RESNET))
    assert "starting at iteration 3 in the finetune stage" in (tmp_path / "log.txt").read_text()


def test_adamw_does_not_move_frozen_weights_nor_forget_them():
    """AdamW's momentum and decoupled weight decay would move a parameter with a zero gradient;
    the frozen ones have none, stay in the optimizer, and learn once unfrozen."""
    torch.manual_seed(0)
    resnet, head = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)), nn.Linear(3, 1)
    params = list(resnet.parameters())
    optimizer = torch.optim.AdamW([*params, *head.parameters()], lr=0.1, weight_decay=0.5)

    def step(stage):
        set_stage(resnet, params, stage)
        optimizer.zero_grad(set_to_none=False)
        head(resnet(torch.randn(4, 3))).sum().backward()
        optimizer.step()

    step(FINETUNE)  # momentum for every parameter, and gradients left behind
    before = [p.detach().clone() for p in params] + [resnet[1].running_mean.clone()]
    step(ADAPT)
    step(ADAPT)
    after = params + [resnet[1].running_mean]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    step(FINETUNE)
    assert not any(torch.equal(a, b) for a, b in zip(before, after))


def test_bad_adapt_iters_is_refused():
    cfg = build_config(TINY)
    cfg.SOLVER.ADAPT_ITERS = -1
    with pytest.raises(ValueError, match="SOLVER.ADAPT_ITERS must be an integer >= 0"):
        build_stage_hooks(cfg)
    cfg.SOLVER.ADAPT_ITERS = 0
    assert build_stage_hooks(cfg) == []
    cfg.SOLVER.BACKBONE_WARMUP_ITERS = -2
    with pytest.raises(ValueError, match="SOLVER.BACKBONE_WARMUP_ITERS must be an integer >= 0"):
        build_stage_hooks(cfg)


class LearningRates(HookBase):
    """Records, before each step, the lr of a ResNet parameter and of a head parameter."""

    def __init__(self):
        self.ratios = []

    def before_train(self):
        model = self.trainer.model
        resnet = id(next(model.backbone.bottom_up.parameters()))
        head = id(next(model.heads.parameters()))
        groups = self.trainer.optimizer.param_groups
        self._resnet = next(g for g in groups if id(g["params"][0]) == resnet)
        self._head = next(g for g in groups if id(g["params"][0]) == head)

    def before_step(self):
        self.ratios.append(round(self._resnet["lr"] / self._head["lr"], 6))


@pytest.mark.parametrize("warmup, factors", [
    (0, [1, 1, 1, 1, 1, 1]),
    (3, [1, 1, 1 / 4, 2 / 4, 3 / 4, 1]),
])
def test_the_resnet_joins_at_the_scheduled_lr_or_warms_up(sample_root, tmp_path, warmup,
                                                          factors):
    """ADAPT_ITERS 2, then the ResNet's lr (relative to the heads') with BACKBONE_WARMUP_ITERS."""
    args = args_for(tmp_path, "SOLVER.ADAPT_ITERS", "2", "SOLVER.MAX_ITER", "6",
                    "SOLVER.BACKBONE_WARMUP_ITERS", str(warmup), "SOLVER.BACKBONE_MULTIPLIER",
                    "0.5", "DATASETS.TEST", "()", "SOLVER.CHECKPOINT_PERIOD", "100")
    trainer = train_net.Trainer(train_net.setup(args))
    rates = LearningRates()
    trainer.register_hooks([rates])
    trainer.resume_or_load(resume=False)
    trainer.train()
    assert rates.ratios == [round(0.5 * f, 6) for f in factors]


@pytest.mark.slow
def test_two_cpu_processes_cross_the_switch(init_weights, tmp_path):
    """DistributedDataParallel with the ResNet out of the loss in the adapt stage, in it after."""
    cmd = [sys.executable, os.path.join(REPO, "train_net.py"), "--config-file", TINY,
           "--num-gpus", "2", "SOLVER.IMS_PER_BATCH", "4", "SOLVER.ADAPT_ITERS", "1",
           "SOLVER.MAX_ITER", "2", "SOLVER.CHECKPOINT_PERIOD", "1", "DATASETS.TEST", "()",
           "MODEL.WEIGHTS", init_weights, "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    init = load(init_weights)
    after_adapt = load(tmp_path / "model_0000000.pth")
    final = load(tmp_path / "model_final.pth")
    assert not changed(part(init, RESNET), part(after_adapt, RESNET))
    assert changed(part(init, "backbone.fpn_"), part(after_adapt, "backbone.fpn_"))
    assert changed(part(after_adapt, RESNET), part(final, RESNET))
