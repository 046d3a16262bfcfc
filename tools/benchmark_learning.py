#!/usr/bin/env python
"""Benchmark: learning of the multi-task model against the three single-task teachers.

Each model trains on the same generated sample scenes under the same CPU budget (process CPU
time, evaluation excluded; a budget of 2N CPU-minutes is about N wall-minutes when the process
has both cores of the machine) and is evaluated on the held-out scenes several times along the
way. The learning rate is a step schedule in CPU time, since the number of iterations a budget
buys is not known ahead: warm-up, constant, then x0.1 from ``--decay-at`` of the budget on.
Prints the final metrics side by side, writes the curves as JSON and a plot.

    python tools/benchmark_learning.py --cpu-minutes 60 --evals 6 --out benchmarks/learning
    python tools/benchmark_learning.py --cpu-minutes 30 --evals 4 --jobs 2
    python tools/benchmark_learning.py --models multi-task --out /tmp/ab \
        MODEL.TASK_WEIGHTS.SEMANTIC 2
"""
import argparse
import json
import os
import subprocess
import sys
import time
from typing import NamedTuple

from detectron2.engine import HookBase, default_argument_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lv_adapter.engine.stages import StageSwitch  # noqa: E402 (needs ROOT on the path)
from lv_adapter.utils.io import atomic_path, write_json  # noqa: E402

ALL_TASKS = ("det AP50", "sem mIoU", "drivable mIoU")
# The LV-Adapter (issue 9) as the demo trains it: configs/sample/lv_adapter_R18.yaml, the R18
# multi-task model + MiniLM (no model hub needed), 4 learned context vectors per task, one L2V
# layer sized like the heads. The variants change only what their name says.
LV_CONFIG = "lv_adapter_R18.yaml"
# CLIP's text-tower type with random weights: ViT-S-32-alt's tower (width 256, 10 layers) is a
# cheaper instance of the transformer RN50's CLIP uses (width 512, 12 layers).
LV_CLIP_RANDOM = ("MODEL.ADAPTER.TEXT_ENCODER.NAME", "OpenCLIPTextEncoder",
                  "MODEL.ADAPTER.TEXT_ENCODER.MODEL", "ViT-S-32-alt",
                  "MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS", "")


# FCOS + 2 x Semantic FPN on the sample scenes (projects/ConvHeads, table 8).
CONV, CONV_CONFIG = "projects/ConvHeads", "all_conv_R18.yaml"


class Model(NamedTuple):
    """A benchmarked model: a config under ``<project>/configs/sample/`` (the repository's when
    ``project`` is empty; a project's package is imported first), the metrics it is judged on,
    config overrides, whether it starts from the pre-trained ResNet (``--pretrained``), and the
    fraction of its budget spent in the adapt stage (ResNet frozen; SOLVER.ADAPT_ITERS)."""
    config: str
    judged: tuple
    opts: tuple = ()
    pretrained: bool = False
    adapt_fraction: float = 0.0
    project: str = ""


MODELS = {
    "multi-task": Model("multitask_R18.yaml", ALL_TASKS),
    "teacher detection": Model("teacher_detection_R18.yaml", ("det AP50",)),
    "teacher semantic": Model("teacher_semantic_R18.yaml", ("sem mIoU",)),
    "teacher drivable": Model("teacher_drivable_R18.yaml", ("drivable mIoU",)),
    "lv minilm": Model(LV_CONFIG, ALL_TASKS),
    "lv clip-random": Model(LV_CONFIG, ALL_TASKS, LV_CLIP_RANDOM),
    "lv handcrafted": Model(LV_CONFIG, ALL_TASKS, ("MODEL.ADAPTER.PROMPT.MODE", "handcrafted")),
    "lv pretrain-finetune": Model(LV_CONFIG, ALL_TASKS, pretrained=True),
    "lv pretrain-adapt-finetune": Model(LV_CONFIG, ALL_TASKS, pretrained=True,
                                        adapt_fraction=0.2),
    # Tables 2 and 8 (no adapter): the query heads and every head convolutional, each with and
    # without the adapt stage.
    "pretrain-finetune": Model("multitask_R18.yaml", ALL_TASKS, pretrained=True),
    "pretrain-adapt-finetune": Model("multitask_R18.yaml", ALL_TASKS, pretrained=True,
                                     adapt_fraction=0.2),
    "conv pretrain-finetune": Model(CONV_CONFIG, ALL_TASKS, pretrained=True, project=CONV),
    "conv pretrain-adapt-finetune": Model(CONV_CONFIG, ALL_TASKS, pretrained=True,
                                          adapt_fraction=0.2, project=CONV),
}
DEFAULT_MODELS = ["multi-task", "teacher detection", "teacher semantic", "teacher drivable"]
# Trained first when a pre-trained model is asked for without --pretrained.
PRETRAIN_MODEL = "teacher detection"
# The part of a checkpoint that --pretrained passes on: the ResNet, as ImageNet or CLIP weights
# would be (the FPN, the adapter and the heads start from scratch).
PRETRAINED_PREFIX = "backbone.bottom_up."
METRICS = {"det AP50": ("bbox", "AP50"), "sem mIoU": ("sem_seg", "mIoU"),
           "drivable mIoU": ("drivable_seg", "mIoU")}


class BudgetSpent(BaseException):
    """Ends training when the budget is used up (BaseException: detectron2's loop logs every
    Exception as a failure)."""


class BudgetHook(HookBase):
    """Evaluates at evenly spaced fractions of a CPU-time budget, divides the learning rate by
    10 once ``decay_at`` of it is used, and stops at the end of it.

    With ``adapt_fraction`` > 0 the run starts in the adapt stage (SOLVER.ADAPT_ITERS set past
    the end, so train_net's StageSwitch freezes the ResNet) and this hook ends that stage once
    ``adapt_fraction`` of the budget is used: the number of iterations a budget buys is not
    known ahead.
    """

    def __init__(self, budget_s, num_evals, evaluate, decay_at=0.8, adapt_fraction=0.0):
        self.budget_s, self.num_evals, self.evaluate = budget_s, num_evals, evaluate
        self.decay_at, self.decayed = decay_at, False
        self.adapt_fraction, self.adapt_end_iter = adapt_fraction, None
        self.curve, self.excluded = [], 0.0

    def before_train(self):
        self.start_cpu, self.start_wall = time.process_time(), time.perf_counter()
        if self.adapt_fraction > 0:
            self.stage_switch = next(h for h in self.trainer._hooks if isinstance(h, StageSwitch))

    def after_step(self):
        used = time.process_time() - self.start_cpu - self.excluded
        if not self.decayed and used >= self.decay_at * self.budget_s:
            # detectron2's scheduler multiplies its base_lrs by the warm-up factor each step.
            scheduler = self.trainer.scheduler
            scheduler.base_lrs = [lr * 0.1 for lr in scheduler.base_lrs]
            self.decayed = True
        if (self.adapt_fraction > 0 and self.adapt_end_iter is None
                and used >= self.adapt_fraction * self.budget_s):
            self.adapt_end_iter = self.trainer.iter + 1  # the next step is the first finetune
            self.stage_switch.adapt_iters = self.adapt_end_iter
        if used < self.budget_s * (len(self.curve) + 1) / self.num_evals:
            return
        before = time.process_time()
        results = self.evaluate()
        self.excluded += time.process_time() - before
        self.curve.append({"cpu_s": used, "wall_s": time.perf_counter() - self.start_wall,
                           "iter": self.trainer.iter + 1, "results": results})
        if len(self.curve) == self.num_evals:
            raise BudgetSpent


def train_child(name, budget_s, num_evals, decay_at, out_json, pretrained="", extra_opts=()):
    """Child process: train model ``name`` under the budget; write its curve to ``out_json`` and
    its final weights to ``model_final.pth`` beside it.

    ``pretrained``: a weights file for MODEL.WEIGHTS when the model is a pre-trained one.
    ``extra_opts`` (KEY VALUE ...) override the config after the benchmark's own settings.
    """
    import train_net
    from lv_adapter.projects import import_projects

    model = MODELS[name]
    if model.project:
        import_projects([os.path.join(ROOT, model.project)])
    opts = ["SOLVER.MAX_ITER", "1000000", "SOLVER.LR_SCHEDULER_NAME", "WarmupMultiStepLR",
            "SOLVER.STEPS", "()", "SOLVER.CHECKPOINT_PERIOD", "1000000", "TEST.EVAL_PERIOD", "0",
            "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", os.path.dirname(out_json), "SEED", "0",
            *model.opts]
    if model.pretrained:
        if not pretrained:
            raise ValueError(f"{name} starts from pre-trained weights: pass --pretrained")
        opts += ["MODEL.WEIGHTS", pretrained]
    if model.adapt_fraction > 0:  # BudgetHook ends the adapt stage
        opts += ["SOLVER.ADAPT_ITERS", "999999"]
    config_path = os.path.join(ROOT, model.project, "configs", "sample", model.config)
    args = default_argument_parser().parse_args(["--config-file", config_path, *opts,
                                                 *extra_opts])
    cfg = train_net.setup(args)
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    hook = BudgetHook(budget_s, num_evals, lambda: train_net.Trainer.test(cfg, trainer.model),
                      decay_at, model.adapt_fraction)
    trainer.register_hooks([hook])
    try:
        trainer.train()
    except BudgetSpent:
        pass
    trainer.checkpointer.save("model_final")
    write_json(out_json, {"config": model.config, "opts": list(model.opts),
                          "pretrained": pretrained, "budget_cpu_s": budget_s,
                          "adapt_end_iter": hook.adapt_end_iter,
                          "curve": hook.curve}, indent=1)


def backbone_weights(checkpoint, out_path):
    """Write the ResNet part (PRETRAINED_PREFIX) of a detectron2 checkpoint to ``out_path``."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state = state.get("model", state)
    kept = {k: v for k, v in state.items() if k.startswith(PRETRAINED_PREFIX)}
    if not kept:
        raise ValueError(f"--pretrained {checkpoint}: no '{PRETRAINED_PREFIX}*' weights in it")
    with atomic_path(out_path) as tmp:
        torch.save({"model": kept}, tmp)
    return out_path


def metric(results, name):
    key, field = METRICS[name]
    return results.get(key, {}).get(field, float("nan"))


def run_all(args):
    from lv_adapter.data.sample import write_sample_bdd100k

    data = args.data or os.path.join(args.out, "datasets")
    if not args.data:
        write_sample_bdd100k(data, args.num_images, args.width, args.height, seed=0)
    elif not os.path.isdir(os.path.join(data, "bdd100k")):
        raise ValueError(f"--data {data}: no bdd100k/ folder in it (a datasets folder that an "
                         "earlier run of this tool wrote is expected)")
    env = dict(os.environ, DETECTRON2_DATASETS=os.path.abspath(data))
    if args.jobs > 1:
        # One thread each: idle OpenMP threads spin, which would bill one model for another's
        # waiting. With --jobs equal to the cores, CPU time then equals each model's wall time.
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    pretrained = ""
    if any(MODELS[name].pretrained for name in args.models):
        pretrained = os.path.join(args.out, "pretrained_backbone.pth")
        backbone_weights(args.pretrained or _pretrain(args, env), pretrained)
    outputs = {}
    with _Jobs(args.jobs) as jobs:
        for name in args.models:
            print(f"== training {name} ({MODELS[name].config}) for {args.cpu_minutes} "
                  "CPU-minutes", flush=True)
            outputs[name] = _curve_path(args.out, name)
            weights = pretrained if MODELS[name].pretrained else ""
            jobs.start(name, _child_cmd(args, name, args.cpu_minutes, weights, outputs[name]), env)
    curves = {}
    for name, out_json in outputs.items():
        with open(out_json) as f:
            curves[name] = json.load(f)["curve"]
    return curves


def _pretrain(args, env):
    """Train PRETRAIN_MODEL for --pretrain-cpu-minutes; return its final checkpoint."""
    print(f"== pre-training {PRETRAIN_MODEL} for {args.pretrain_cpu_minutes} CPU-minutes",
          flush=True)
    out_json = _curve_path(os.path.join(args.out, "pretrain"), PRETRAIN_MODEL)
    with _Jobs(1) as jobs:
        jobs.start(PRETRAIN_MODEL, _child_cmd(args, PRETRAIN_MODEL, args.pretrain_cpu_minutes, "",
                                              out_json), env)
    return os.path.join(os.path.dirname(out_json), "model_final.pth")


def _curve_path(out, name):
    """Where model ``name``'s child writes its curve (the folder is made here)."""
    folder = os.path.join(out, name.replace(" ", "_"))
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, "curve.json")


def _child_cmd(args, name, cpu_minutes, pretrained, out_json):
    return [sys.executable, __file__, "--child", name, "--cpu-minutes", str(cpu_minutes),
            "--evals", str(args.evals), "--decay-at", str(args.decay_at),
            "--pretrained", pretrained, "--child-out", out_json, *args.opts]


class _Jobs:
    """At most ``max_jobs`` training processes at once; leaving the block waits for them all, or
    (on an error or an interrupt) ends them, so that no training runs on behind the benchmark."""

    def __init__(self, max_jobs):
        self.max_jobs, self.running = max_jobs, []

    def start(self, name, cmd, env):
        """Run ``cmd`` (training ``name``) once fewer than ``max_jobs`` run."""
        while len(self.running) >= self.max_jobs:
            _wait(self.running.pop(0))
        self.running.append((name, subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            while self.running and exc[0] is None:
                _wait(self.running.pop(0))
        finally:
            for _, process in self.running:
                process.terminate()
                process.wait()
        return False


def _wait(job):
    name, process = job
    if process.wait() != 0:
        raise RuntimeError(f"training {name} failed (exit status {process.returncode}); "
                           f"see its log.txt under the output folder")


def report(curves, out):
    print("final held-out metrics (same CPU budget per model):")
    for name, model in MODELS.items():
        if name not in curves:
            continue
        final = curves[name][-1]
        values = ", ".join(f"{m} {metric(final['results'], m):.1f}" for m in model.judged)
        spent = f"{final['iter']} iterations, {final['wall_s'] / 60:.1f} wall-minutes"
        print(f"  {name:26s} {values}  ({spent})")
    write_json(os.path.join(out, "curves.json"), curves, indent=1)
    plot(curves, os.path.join(out, "learning_curves.png"))


def plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, name in zip(axes, METRICS):
        for model_name, model in MODELS.items():
            if name in model.judged and model_name in curves:
                points = curves[model_name]
                ax.plot([p["cpu_s"] / 60 for p in points],
                        [metric(p["results"], name) for p in points], "o-", label=model_name)
        ax.set(title=f"held-out {name}", xlabel="CPU-minutes of training", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-minutes", type=float, default=60.0, help="budget per model")
    parser.add_argument("--evals", type=int, default=6, help="evaluations along the way")
    parser.add_argument("--num-images", type=int, default=1200, help="sample scenes to draw")
    parser.add_argument("--decay-at", type=float, default=0.8,
                        help="fraction of the budget after which the learning rate is x0.1")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--out", default="benchmarks/learning")
    parser.add_argument("--data", default="",
                        help="the datasets folder of an earlier run with the same --num-images, "
                        "--width and --height: reused instead of drawing the scenes again")
    parser.add_argument("--jobs", type=int, default=1,
                        help="models trained at once; above 1 each gets one thread")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=DEFAULT_MODELS,
                        help="train only these (default: the multi-task model and the teachers)")
    parser.add_argument("--pretrained", default="",
                        help="a checkpoint whose ResNet (backbone.bottom_up) starts the 'lv "
                        "pretrain-*' models; without it the tool first trains "
                        f"'{PRETRAIN_MODEL}' for --pretrain-cpu-minutes")
    parser.add_argument("--pretrain-cpu-minutes", type=float, default=3.0,
                        help="budget of that pre-training")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides for every model (KEY VALUE ...), e.g. for an A/B")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.child:
        train_child(args.child, args.cpu_minutes * 60, args.evals, args.decay_at, args.child_out,
                    args.pretrained, args.opts)
    else:
        report(run_all(args), args.out)
