#!/usr/bin/env python
"""Check: ``evaluate_lane.py`` gives the official BDD100K toolkit's lane numbers.

Writes random lane-marking ground truth (lines of every category, style and direction, 1 to 8
pixels wide) and predictions made from it (shifted by 0 to 6 pixels, relabeled, dropped, one
image without a prediction), scores them with ``evaluate_lane.py`` and with the toolkit's own
command line (``python -m bdd100k.eval.run -t lane_mark``, from its environment: ``make
toolkit-env``), and compares every metric.

    python projects/LaneMarking/tools/check_lane_parity.py --images 20

Exits with status 1 when a metric differs by more than ``--tolerance`` (percentage points).
Also prints the time of both (one process each; the toolkit's includes its start-up).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(os.path.dirname(PROJECT))
sys.path[:0] = [PROJECT, ROOT, os.path.join(PROJECT, "tools")]

import evaluate_lane  # noqa: E402
from lv_lanes.encoding import BACKGROUND, CATEGORIES, encode  # noqa: E402
from lv_lanes.metric import flat_toolkit_table  # noqa: E402


def random_lanes(rng, height, width):
    """A background mask with 3 to 10 random lane lines."""
    mask = np.full((height, width), BACKGROUND, np.uint8)
    for _ in range(rng.integers(3, 11)):
        value = int(encode(rng.integers(len(CATEGORIES)), rng.integers(2), rng.integers(2)))
        start = (int(rng.integers(width)), int(rng.integers(height)))
        end = (int(rng.integers(width)), int(rng.integers(height)))
        cv2.line(mask, start, end, value, int(rng.integers(1, 9)))
    return mask


def predicted_from(rng, truth):
    """The ground truth shifted, partly relabeled and partly erased."""
    dx, dy = (int(v) for v in rng.integers(-6, 7, size=2))
    pred = np.roll(truth, (dy, dx), axis=(0, 1))
    lane = pred != BACKGROUND
    relabel = lane & (rng.random(pred.shape) < 0.05)
    pred[relabel] = encode(rng.integers(len(CATEGORIES)), 0, 0)
    pred[lane & (rng.random(pred.shape) < 0.1)] = BACKGROUND
    return pred


def write_pair(root, images, height, width, seed):
    rng = np.random.default_rng(seed)
    gt, pred = os.path.join(root, "gt"), os.path.join(root, "pred")
    os.makedirs(gt)
    os.makedirs(pred)
    for i in range(images):
        truth = random_lanes(rng, height, width)
        cv2.imwrite(os.path.join(gt, f"{i:04d}.png"), truth)
        if i:  # image 0 has no prediction
            cv2.imwrite(os.path.join(pred, f"{i:04d}.png"), predicted_from(rng, truth))
    return gt, pred


def toolkit_table(python, gt, pred, out_file):
    cmd = [python, "-m", "bdd100k.eval.run", "-t", "lane_mark", "-g", gt, "-r", pred,
           "--nproc", "1", "--out-file", out_file]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    with open(out_file) as f:
        return flat_toolkit_table(json.load(f))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--toolkit-python", default=os.path.join(ROOT, ".venv-toolkit", "bin",
                                                                 "python"))
    parser.add_argument("--tolerance", type=float, default=1e-6, help="percentage points")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        gt, pred = write_pair(root, args.images, args.height, args.width, args.seed)
        start = time.perf_counter()
        ours, missing = evaluate_lane.evaluate_folders(gt, pred, progress=False)
        our_time = time.perf_counter() - start
        start = time.perf_counter()
        theirs = toolkit_table(args.toolkit_python, gt, pred, os.path.join(root, "tk.json"))
        their_time = time.perf_counter() - start  # with the toolkit's start-up (imports)
    if set(ours) != set(theirs):
        print(f"different metrics: ours only {sorted(set(ours) - set(theirs))}, toolkit's only "
              f"{sorted(set(theirs) - set(ours))}")
        return 1
    worst = max(abs(ours[k] - theirs[k]) for k in ours)
    for key in sorted(ours):
        print(f"{key:32s} {ours[key]:10.4f} {theirs[key]:10.4f}")
    print(f"{len(ours)} metrics on {args.images} images ({missing} without a prediction); "
          f"largest difference {worst:.2e} points")
    print(f"time: evaluate_lane {our_time:.2f} s, the toolkit's command {their_time:.2f} s "
          f"(its process start and imports included), one process each")
    print("all metrics equal" if worst <= args.tolerance else "METRICS DIFFER")
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
