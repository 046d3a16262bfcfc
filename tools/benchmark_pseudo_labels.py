#!/usr/bin/env python
"""Benchmark: each teacher's pseudo-label throughput and the quality of its pseudo labels.

For every ``--teacher TASK=CONFIG:WEIGHTS`` this runs tools/generate_pseudo_labels.py (``--force``,
``--num-gpus N``) over the images of ``--dataset`` that lack TASK, then

* throughput: images per second of each process (its labeling loop: reading, resizing, the
  model, writing; not the start-up) and all processes together (images / slowest process);
* quality against the held-back ground truth: the images whose TASK labels the disjoint split hid
  but ``bdd100k_multitask_train`` has. Detection: the project's DetectionEvaluator on the pseudo
  boxes with their scores (AP, AP50). Segmentation: the project's confusion-matrix metrics over
  the pixels the pseudo labels keep (mIoU, pACC; drivable also the official mIoU), and the share
  of held-back pixels they keep.

On the sample scenes at 1280x720 (the paper's image size)::

    python tools/make_sample_bdd100k.py --out datasets/sample720 --num-images 60
    python tools/make_splits.py --root datasets/sample720 --setting disjoint_normal \\
        --sizes detection=10,semantic=6,drivable=-1
    DETECTRON2_DATASETS=datasets/sample720 python tools/benchmark_pseudo_labels.py \\
        --dataset bdd100k_disjoint_normal_train --output output/pseudo_bench \\
        --teacher detection=configs/sample/teacher_detection_R18.yaml:DET.pth \\
        --teacher semantic=configs/sample/teacher_semantic_R18.yaml:SEM.pth \\
        --teacher drivable=configs/sample/teacher_drivable_R18.yaml:DRIV.pth [--num-gpus 2]

KEY VALUE pairs at the end apply to every teacher (e.g. INPUT.MIN_SIZE_TEST 720 INPUT.MAX_SIZE_TEST
1280 to run the sample teachers at full resolution).
"""
import argparse
import json
import os
import re
import subprocess
import sys

import lv_adapter  # noqa: F401  (first: sets up detectron2 before the data modules import it)
import torch
from detectron2.data import DatasetCatalog
from detectron2.structures import Boxes, Instances
from tabulate import tabulate

from lv_adapter.data.pseudo_labels import pseudo_label_paths
from lv_adapter.data.readers import read_label_mask
from lv_adapter.engine.pseudo_labeler import output_path, records_lacking
from lv_adapter.evaluation.detection import DetectionEvaluator
from lv_adapter.evaluation.segmentation import (
    confusion_matrix,
    official_drivable_miou,
    segmentation_metrics,
)
from lv_adapter.tasks import BUILTIN_TASKS as TASKS, DETECTION, get_task
from lv_adapter.tasks.detection import DET_CLASSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "tools", "generate_pseudo_labels.py")
PROCESS_LINE = re.compile(r"^process (\d+): labeled (\d+) images in ([0-9.]+) s", re.M)
HELD_BACK = "pseudo_benchmark_held_back"


def parse_teacher(text):
    """``TASK=CONFIG:WEIGHTS`` -> (task, config, weights)."""
    task, sep, rest = text.partition("=")
    config, sep2, weights = rest.rpartition(":")
    if not (sep and sep2) or task not in TASKS:
        raise argparse.ArgumentTypeError(f"expected TASK=CONFIG:WEIGHTS, TASK in {TASKS}: {text!r}")
    return task, config, weights


def throughput(task, config, weights, args):
    """Run the generator; return per-process images/s and images/s of all processes."""
    cmd = [sys.executable, TOOL, "--config-file", config, "--dataset", args.dataset,
           "--output", os.path.join(args.output, task), "--num-gpus", str(args.num_gpus),
           "--force", *(["--limit", str(args.limit)] if args.limit else []),
           "MODEL.WEIGHTS", weights, *args.opts]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")
    rows = [(int(n), float(s)) for _, n, s in PROCESS_LINE.findall(result.stdout)]
    per_process = [n / s if s else float("nan") for n, s in rows]
    images = sum(n for n, _ in rows)
    return per_process, images / max(s for _, s in rows)


def held_back(args, task):
    """Ground-truth records of the labeled images whose ``task`` labels the split hid."""
    selected = records_lacking(DatasetCatalog.get(args.dataset), task)
    ids = {d["image_id"] for d in (selected[: args.limit] if args.limit else selected)}
    full = DatasetCatalog.get("bdd100k_multitask_train")
    return [d for d in full if d["image_id"] in ids and task in d["labeled_tasks"]]


def detection_quality(root, records):
    """AP and AP50 (percent) of the pseudo boxes (with scores) on ``records``."""
    with open(pseudo_label_paths(root)[DETECTION], encoding="utf-8") as f:
        frames = {os.path.splitext(fr["name"])[0]: fr for fr in json.load(f)}
    DatasetCatalog.register(HELD_BACK, lambda: records)
    try:
        evaluator = DetectionEvaluator(HELD_BACK)
        for record in records:
            evaluator.process([record], [{"instances": frame_instances(
                frames[record["image_id"]], (record["height"], record["width"]))}])
        results = evaluator.evaluate()["bbox"]
    finally:
        DatasetCatalog.remove(HELD_BACK)
    return {"AP": results["AP"], "AP50": results["AP50"]}


def frame_instances(frame, image_size):
    """A pseudo-label frame as predicted ``Instances``; box2d's inclusive x2/y2 get + 1, as the
    BDD100K loader reads them."""
    labels = frame["labels"]
    boxes = [[b["x1"], b["y1"], b["x2"] + 1, b["y2"] + 1] for b in (x["box2d"] for x in labels)]
    instances = Instances(image_size)
    instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4))
    instances.scores = torch.tensor([x["score"] for x in labels], dtype=torch.float64)
    instances.pred_classes = torch.tensor([DET_CLASSES.index(x["category"]) for x in labels],
                                          dtype=torch.int64)
    return instances


def segmentation_quality(root, task, records):
    """Metrics (percent) over the pixels the pseudo labels keep, and the share they keep."""
    spec = get_task(task)
    classes = spec.classes  # pseudo labels: BDD100K's
    confusion, kept, total = 0, 0, 0
    for record in records:
        size = (record["height"], record["width"])
        legacy = bool(spec.legacy_key and record.get(spec.legacy_key))
        gt = read_label_mask(record[spec.label_keys[0]], task, size, legacy_drivable=legacy)
        pseudo = read_label_mask(output_path(root, task, record["image_id"]), task, size)
        gt = gt.copy()
        gt[pseudo == 255] = 255  # pixels without a pseudo label teach nothing: not scored
        confusion = confusion + confusion_matrix(gt, pseudo, len(classes))
        kept, total = kept + int((pseudo != 255).sum()), total + pseudo.size
    metrics = segmentation_metrics(confusion, classes)
    out = {"mIoU": metrics["mIoU"], "pACC": metrics["pACC"], "kept %": 100 * kept / max(total, 1)}
    if spec.official_classes:
        out["mIoU_bdd100k"] = official_drivable_miou(confusion, spec.official_classes)
    return out


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="training setting, e.g. "
                        "bdd100k_disjoint_normal_train")
    parser.add_argument("--teacher", type=parse_teacher, action="append", required=True,
                        help="TASK=CONFIG:WEIGHTS (once per teacher)")
    parser.add_argument("--output", required=True, help="pseudo labels go to OUTPUT/<task>")
    parser.add_argument("--num-gpus", type=int, default=1, help="processes per teacher")
    parser.add_argument("--limit", type=int, help="label only the first K images")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE for every teacher")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    rows = []
    for task, config, weights in args.teacher:
        per_process, total = throughput(task, config, weights, args)
        records = held_back(args, task)
        root = os.path.join(args.output, task)
        if task == DETECTION:
            quality = detection_quality(root, records)
        else:
            quality = segmentation_quality(root, task, records)
        rows.append({"teacher": task, "img/s per process": " ".join(f"{r:.2f}" for r in
                                                                    per_process),
                     "img/s": round(total, 2), "held-back images": len(records),
                     **{k: round(v, 2) for k, v in quality.items()}})
    print(tabulate(rows, headers="keys", tablefmt="pipe"))
    return rows


if __name__ == "__main__":
    main()
