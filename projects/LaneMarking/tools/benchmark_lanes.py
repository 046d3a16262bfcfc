#!/usr/bin/env python
"""Benchmark: what lane marking costs. The four-task students (MaskFormer or dense lane head)
against the three-task student, and the two lane teachers against each other.

Inference at 256x144 (the sample) and 1280x720, training steps (batch 4) at 256x144; random
weights (speed does not depend on them), the models interleaved over rounds in one process
(the repository's ``tools/timing.py``). Models run on MODEL.DEVICE.

    python projects/LaneMarking/tools/benchmark_lanes.py --steps 10 --rounds 10
"""
import os
import sys

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(PROJECT))
sys.path[:0] = [PROJECT, REPO, os.path.join(REPO, "tools")]

from timing import SIZE, load_model, median_inference_seconds, median_seconds, \
    parse_timing_args, scaled, train_step, training_batch, where  # noqa: E402
from lv_adapter.projects import import_projects  # noqa: E402

# name -> (config, overrides)
MODELS = {
    "three-task R18": (os.path.join(REPO, "configs/sample/multitask_R18.yaml"), ()),
    "four-task R18, MaskFormer lanes": (
        os.path.join(PROJECT, "configs/sample/multitask4_R18.yaml"), ()),
    "four-task R18, dense lanes": (os.path.join(PROJECT, "configs/sample/multitask4_R18.yaml"),
                                   ("MODEL.HEADS.LANE", "LaneDenseHead")),
    "lane teacher R18, MaskFormer": (
        os.path.join(PROJECT, "configs/sample/teacher_lane_R18.yaml"), ()),
    "lane teacher R18, dense": (
        os.path.join(PROJECT, "configs/sample/teacher_lane_dense_R18.yaml"), ()),
}


def benchmark(steps, rounds, scale=1.0, opts=()):
    """Inference at both sizes, then training steps; each with the ratios of print_ratios."""
    import_projects([PROJECT])
    models = {name: load_model(path, False, [*opts, *extra])
              for name, (path, extra) in MODELS.items()}
    for size in (scaled((256, 144), scale), scaled(SIZE, scale)):
        medians = median_inference_seconds(models, rounds, size)
        print_ratios(f"inference, {size[0]}x{size[1]}, {where()}, median of {rounds} rounds",
                     medians, "s/image")
    size = scaled((256, 144), scale)
    batch = training_batch(size, num_images=4)
    steps_of = {name: train_step(load_model(path, True, [*opts, *extra]), batch)
                for name, (path, extra) in MODELS.items()}
    print_ratios(f"training step, batch 4 at {size[0]}x{size[1]}, {where()}, median of "
                 f"{steps} steps", median_seconds(steps_of, steps), "s/step")


def print_ratios(title, medians, unit):
    """Each model's median, and the ratios the lane rows of BENCHMARKS.md report."""
    print(f"{title}:")
    for name, sec in medians.items():
        print(f"  {name:34s} {sec:7.3f} {unit}")
    base = medians["three-task R18"]
    for name in ("four-task R18, MaskFormer lanes", "four-task R18, dense lanes"):
        print(f"  ratio {name} / three-task R18: {medians[name] / base:.2f}")
    print(f"  ratio lane teacher dense / MaskFormer: "
          f"{medians['lane teacher R18, dense'] / medians['lane teacher R18, MaskFormer']:.2f}")


def main(argv=None):
    args = parse_timing_args(__doc__, argv)
    benchmark(args.steps, args.rounds, args.scale, args.opts)


if __name__ == "__main__":
    main()
