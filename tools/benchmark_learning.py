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

from detectron2.engine import HookBase, default_argument_parser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODELS = {  # name -> (config, the metrics it is judged on)
    "multi-task": ("multitask_R18.yaml", ("det AP50", "sem mIoU", "drivable mIoU")),
    "teacher detection": ("teacher_detection_R18.yaml", ("det AP50",)),
    "teacher semantic": ("teacher_semantic_R18.yaml", ("sem mIoU",)),
    "teacher drivable": ("teacher_drivable_R18.yaml", ("drivable mIoU",)),
}
METRICS = {"det AP50": ("bbox", "AP50"), "sem mIoU": ("sem_seg", "mIoU"),
           "drivable mIoU": ("drivable_seg", "mIoU")}


class BudgetSpent(BaseException):
    """Ends training when the budget is used up (BaseException: detectron2's loop logs every
    Exception as a failure)."""


class BudgetHook(HookBase):
    """Evaluates at evenly spaced fractions of a CPU-time budget, divides the learning rate by
    10 once ``decay_at`` of it is used, and stops at the end of it."""

    def __init__(self, budget_s, num_evals, evaluate, decay_at=0.8):
        self.budget_s, self.num_evals, self.evaluate = budget_s, num_evals, evaluate
        self.decay_at, self.decayed = decay_at, False
        self.curve, self.excluded = [], 0.0

    def before_train(self):
        self.start_cpu, self.start_wall = time.process_time(), time.perf_counter()

    def after_step(self):
        used = time.process_time() - self.start_cpu - self.excluded
        if not self.decayed and used >= self.decay_at * self.budget_s:
            # detectron2's scheduler multiplies its base_lrs by the warm-up factor each step.
            scheduler = self.trainer.scheduler
            scheduler.base_lrs = [lr * 0.1 for lr in scheduler.base_lrs]
            self.decayed = True
        if used < self.budget_s * (len(self.curve) + 1) / self.num_evals:
            return
        before = time.process_time()
        results = self.evaluate()
        self.excluded += time.process_time() - before
        self.curve.append({"cpu_s": used, "wall_s": time.perf_counter() - self.start_wall,
                           "iter": self.trainer.iter + 1, "results": results})
        if len(self.curve) == self.num_evals:
            raise BudgetSpent


def train_child(config, budget_s, num_evals, decay_at, out_json, extra_opts=()):
    """Child process: train one model under the budget; write its curve to ``out_json``.

    ``extra_opts`` (KEY VALUE ...) override the config after the benchmark's own settings.
    """
    import train_net

    opts = ["SOLVER.MAX_ITER", "1000000", "SOLVER.LR_SCHEDULER_NAME", "WarmupMultiStepLR",
            "SOLVER.STEPS", "()", "SOLVER.CHECKPOINT_PERIOD", "1000000", "TEST.EVAL_PERIOD", "0",
            "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", os.path.dirname(out_json), "SEED", "0",
            *extra_opts]
    config_path = os.path.join(ROOT, "configs", "sample", config)
    args = default_argument_parser().parse_args(["--config-file", config_path] + opts)
    cfg = train_net.setup(args)
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=False)
    hook = BudgetHook(
        budget_s, num_evals, lambda: train_net.Trainer.test(cfg, trainer.model), decay_at
    )
    trainer.register_hooks([hook])
    try:
        trainer.train()
    except BudgetSpent:
        pass
    with open(out_json, "w") as f:
        json.dump({"config": config, "budget_cpu_s": budget_s, "curve": hook.curve}, f, indent=1)


def metric(results, name):
    key, field = METRICS[name]
    return results.get(key, {}).get(field, float("nan"))


def run_all(args):
    from lv_adapter.data.sample import write_sample_bdd100k

    data = os.path.join(args.out, "datasets")
    write_sample_bdd100k(data, args.num_images, args.width, args.height, seed=0)
    env = dict(os.environ, DETECTRON2_DATASETS=os.path.abspath(data))
    if args.jobs > 1:
        # One thread each: idle OpenMP threads spin, which would bill one model for another's
        # waiting. With --jobs equal to the cores, CPU time then equals each model's wall time.
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    outputs, running = {}, []
    try:
        for name in args.models:
            config = MODELS[name][0]
            out_json = os.path.join(args.out, name.replace(" ", "_"), "curve.json")
            os.makedirs(os.path.dirname(out_json), exist_ok=True)
            while len(running) >= args.jobs:
                _wait(running.pop(0))
            print(f"== training {name} ({config}) for {args.cpu_minutes} CPU-minutes", flush=True)
            cmd = [sys.executable, __file__, "--child", config, "--cpu-minutes",
                   str(args.cpu_minutes), "--evals", str(args.evals), "--decay-at",
                   str(args.decay_at), "--child-out", out_json, *args.opts]
            running.append((name, subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)))
            outputs[name] = out_json
        while running:
            _wait(running.pop(0))
    finally:  # a failed (or interrupted) benchmark leaves no training running behind it
        for _, process in running:
            process.terminate()
            process.wait()
    curves = {}
    for name, out_json in outputs.items():
        with open(out_json) as f:
            curves[name] = json.load(f)["curve"]
    return curves


def _wait(job):
    name, process = job
    if process.wait() != 0:
        raise RuntimeError(f"training {name} failed (exit status {process.returncode}); "
                           f"see its log.txt under the output folder")


def report(curves, out):
    print("final held-out metrics (same CPU budget per model):")
    for name, (_, judged) in MODELS.items():
        if name not in curves:
            continue
        final = curves[name][-1]
        values = ", ".join(f"{m} {metric(final['results'], m):.1f}" for m in judged)
        spent = f"{final['iter']} iterations, {final['wall_s'] / 60:.1f} wall-minutes"
        print(f"  {name:18s} {values}  ({spent})")
    with open(os.path.join(out, "curves.json"), "w") as f:
        json.dump(curves, f, indent=1)
    plot(curves, os.path.join(out, "learning_curves.png"))


def plot(curves, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, name in zip(axes, METRICS):
        for model, (_, judged) in MODELS.items():
            if name in judged and model in curves:
                xs = [p["cpu_s"] / 60 for p in curves[model]]
                ax.plot(xs, [metric(p["results"], name) for p in curves[model]], "o-", label=model)
        ax.set(title=f"held-out {name}", xlabel="CPU-minutes of training", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend()
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
    parser.add_argument("--jobs", type=int, default=1,
                        help="models trained at once; above 1 each gets one thread")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS),
                        help="train only these")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides for every model (KEY VALUE ...), e.g. for an A/B")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.child:
        train_child(args.child, args.cpu_minutes * 60, args.evals, args.decay_at, args.child_out,
                    args.opts)
    else:
        report(run_all(args), args.out)
