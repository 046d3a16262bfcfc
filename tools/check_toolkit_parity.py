#!/usr/bin/env python
"""Check: our evaluators give the official BDD100K toolkit's numbers for the same predictions.

Evaluates a model on a BDD100K-layout validation set with ``train_net.py``'s evaluator, which
also exports the predictions in BDD100K's submission formats, then scores those exports with the
official toolkit's own command line (``python -m bdd100k.eval.run``, packages ``bdd100k`` and
``scalabel``) and compares metric by metric. The toolkit pins old libraries (pydantic 1,
numpy 1), so it runs from its own virtual environment (``make toolkit-env``).

    python tools/check_toolkit_parity.py --config-file configs/sample/multitask_R18.yaml \
        --weights demo_output/model/model_final.pth

Every registered task with an official benchmark (``Task.toolkit_task``) is compared; a project's
tasks with ``--project`` (projects/LaneMarking: the lane benchmark). Exits with status 1 when a
metric differs by more than ``--tolerance`` (percentage points).
"""
import argparse
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from lv_adapter.projects import add_project_argument, import_projects  # noqa: E402
from lv_adapter.tasks import get_task, task_names  # noqa: E402


def our_results(config_file, weights, dataset, out_dir):
    """Evaluate with train_net's evaluator; return its results and the export folder."""
    import train_net

    args = train_net.default_argument_parser().parse_args([
        "--config-file", config_file, "--eval-only", "MODEL.WEIGHTS", weights,
        "DATASETS.TEST", f"('{dataset}',)", "OUTPUT_DIR", out_dir,
    ])
    results = train_net.main(args)
    return results, os.path.join(out_dir, "inference", dataset, "bdd100k")


def toolkit_results(python, task, ground_truth, predictions, out_file):
    """Run the official toolkit's evaluation command; return its JSON results."""
    cmd = [python, "-m", "bdd100k.eval.run", "-t", task, "-g", ground_truth, "-r", predictions,
           "--nproc", "1", "--out-file", out_file]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    with open(out_file) as f:
        return json.load(f)


def same(a, b, tolerance):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= tolerance


def main(args):
    root = os.path.join(os.environ.get("DETECTRON2_DATASETS", "datasets"), "bdd100k", "labels")
    ours, exported = our_results(args.config_file, args.weights, args.dataset, args.out)
    mismatches = 0
    print(f"{'metric':32s} {'ours':>10s} {'toolkit':>10s}")
    for task in map(get_task, task_names()):
        if not task.toolkit_task or task.result_key not in ours:
            continue
        theirs = toolkit_results(args.toolkit_python, task.toolkit_task,
                                 os.path.join(root, task.toolkit_ground_truth),
                                 os.path.join(exported, task.toolkit_export),
                                 os.path.join(args.out, f"toolkit_{task.toolkit_task}.json"))
        for name, a, b in task.toolkit_pairs(ours[task.result_key], theirs):
            ok = same(float(a), float(b), args.tolerance)
            mismatches += not ok
            print(f"{task.result_key + ' ' + name:32s} {a:10.4f} {b:10.4f}"
                  f"{'' if ok else '  MISMATCH'}")
    print("all metrics equal" if not mismatches else f"{mismatches} metric(s) differ")
    return 1 if mismatches else 0


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--dataset", default="bdd100k_multitask_val")
    parser.add_argument("--toolkit-python", default=os.path.join(ROOT, ".venv-toolkit", "bin",
                                                                 "python"))
    parser.add_argument("--tolerance", type=float, default=1e-6, help="percentage points")
    parser.add_argument("--out", default="output/toolkit_parity")
    add_project_argument(parser)
    args = parser.parse_args(argv)
    import_projects(args.project)
    return args


if __name__ == "__main__":
    sys.exit(main(parse_args()))
