#!/usr/bin/env python
"""Benchmark: the multi-task R50 model against the three R50 teachers run one after another.

Inference: seconds per 1280x720 image of each model (random weights: speed does not depend on
them), interleaved over rounds in the same process, and the ratio multi-task / sum of teachers.
Training (``--train``): seconds per step at batch 2 and the peak resident memory, each model in
its own process so that peaks do not mix. MaskFormer head variants (``--heads``): the R50
semantic teacher with each pixel decoder and each inference order, interleaved the same way.
Config overrides (KEY VALUE ...) at the end apply to every model.

    python tools/benchmark_speed.py --rounds 3
    python tools/benchmark_speed.py --train --steps 3
    python tools/benchmark_speed.py --heads --rounds 5
    python tools/benchmark_speed.py --train --steps 3 MODEL.SEMANTIC_HEAD.PIXEL_DECODER light
"""
import itertools
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from tqdm import tqdm

from lv_adapter import build_config
from lv_adapter.engine import fold_frozen_norms
from lv_adapter.modeling.segmentation import PIXEL_DECODERS, UPSAMPLE_ORDERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = {
    "multi-task R50": "multitask_R50.yaml",
    "teacher detection R50": "teacher_detection_R50.yaml",
    "teacher semantic R50": "teacher_semantic_R50.yaml",
    "teacher drivable R50": "teacher_drivable_R50.yaml",
}
HEIGHT, WIDTH = 720, 1280


# Also timed in the inference rounds: the multi-task model with NCHW convolutions, the baseline
# of MODEL.CHANNELS_LAST.
NCHW = "multi-task R50 NCHW"


def load_model(config_name, train, opts=()):
    cfg = build_config(os.path.join(ROOT, "configs", "bdd100k", config_name), list(opts))
    torch.manual_seed(0)
    model = build_model(cfg).train(train)
    if not train:
        fold_frozen_norms(model)
    return model


def random_image(seed):
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.integers(0, 255, (3, HEIGHT, WIDTH), dtype=np.uint8))


def inference_seconds(model, image):
    start = time.perf_counter()
    with torch.no_grad():
        model([{"image": image, "height": HEIGHT, "width": WIDTH}])
    return time.perf_counter() - start


def median_inference_seconds(models, rounds):
    """{name: model} -> {name: median seconds per image}, the models interleaved per round."""
    image = random_image(0)
    for model in models.values():  # warm-up: first calls allocate
        inference_seconds(model, image)
    times = {name: [] for name in models}
    for r in tqdm(range(rounds), desc="rounds"):
        for name, model in models.items():
            times[name].append(inference_seconds(model, random_image(r + 1)))
    return {name: statistics.median(t) for name, t in times.items()}


def benchmark_inference(rounds, opts=()):
    models = {name: load_model(cfg, False, opts) for name, cfg in MODELS.items()}
    models[NCHW] = load_model(MODELS["multi-task R50"], False,
                              [*opts, "MODEL.CHANNELS_LAST", False])
    medians = median_inference_seconds(models, rounds)
    teachers = sum(v for k, v in medians.items() if k.startswith("teacher"))
    print(f"inference, 1280x720, {torch.get_num_threads()} threads, median of {rounds} rounds:")
    for name, sec in medians.items():
        print(f"  {name:24s} {sec:6.2f} s/image")
    print(f"  {'three teachers in turn':24s} {teachers:6.2f} s/image")
    ratio = medians["multi-task R50"] / teachers
    print(f"  ratio multi-task / teachers: {ratio:.2f} (target <= 0.5)")
    print(f"  ratio channels-last / NCHW: {medians['multi-task R50'] / medians[NCHW]:.2f}")


def training_batch():
    batch = []
    for seed in range(2):
        rng = np.random.default_rng(seed)
        instances = Instances((HEIGHT, WIDTH))
        xy = rng.uniform(0, [WIDTH - 200, HEIGHT - 200], (10, 2))
        boxes = np.concatenate([xy, xy + 150], axis=1)
        instances.gt_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32))
        instances.gt_classes = torch.as_tensor(rng.integers(0, 10, 10))
        batch.append({
            "image": random_image(seed), "instances": instances,
            "sem_seg": torch.as_tensor(rng.integers(0, 19, (HEIGHT, WIDTH))),
            "drivable_seg": torch.as_tensor(rng.integers(0, 3, (HEIGHT, WIDTH))),
            "labeled_tasks": ("detection", "semantic", "drivable"),
        })
    return batch


def benchmark_heads(rounds, opts=()):
    """The semantic teacher with each MaskFormer pixel decoder and inference order."""
    models = {}
    for decoder, order in itertools.product(PIXEL_DECODERS, UPSAMPLE_ORDERS):
        variant = ["MODEL.SEMANTIC_HEAD.PIXEL_DECODER", decoder,
                   "MODEL.SEMANTIC_HEAD.INFERENCE_UPSAMPLE", order]
        models[f"{decoder} decoder, upsample {order}"] = load_model(
            MODELS["teacher semantic R50"], False, [*opts, *variant])
    medians = median_inference_seconds(models, rounds)
    print(f"teacher semantic R50 inference, 1280x720, {torch.get_num_threads()} threads, "
          f"median of {rounds} rounds:")
    for name, sec in medians.items():
        print(f"  {name:36s} {sec:6.2f} s/image")


def train_steps(config_name, steps, opts=()):
    """Run in a child process: print JSON with seconds per step and peak RSS in MiB."""
    model = load_model(config_name, True, opts)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    batch = training_batch()
    times = []
    for _ in range(steps + 1):  # the first step is warm-up
        start = time.perf_counter()
        loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"step_s": statistics.median(times[1:]), "peak_mib": peak}))


def benchmark_training(steps, opts=()):
    print(f"training at batch 2 (1280x720), median of {steps} steps after one warm-up:")
    for name, config_name in MODELS.items():
        cmd = [sys.executable, __file__, "--child-train", config_name, "--steps", str(steps),
               *opts]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        print(f"  {name:24s} {result['step_s']:6.1f} s/step  peak {result['peak_mib']:7.0f} MiB")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed inference rounds")
    parser.add_argument("--train", action="store_true", help="benchmark training steps instead")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--heads", action="store_true",
                        help="time the MaskFormer pixel decoders and inference orders instead")
    parser.add_argument("--child-train", help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides for every model (KEY VALUE ...)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.child_train:
        train_steps(args.child_train, args.steps, args.opts)
    elif args.train:
        benchmark_training(args.steps, args.opts)
    elif args.heads:
        benchmark_heads(args.rounds, args.opts)
    else:
        benchmark_inference(args.rounds, args.opts)
