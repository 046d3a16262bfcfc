#!/usr/bin/env python
"""Benchmark: the multi-task R50 model against the three R50 teachers run one after another.

Inference: seconds per 1280x720 image of each model (random weights: speed does not depend on
them), interleaved over rounds in the same process, and the ratio multi-task / sum of teachers.
Training (``--train``): seconds per step at batch 2 and the peak resident memory, each model in
its own process so that peaks do not mix. MaskFormer head variants (``--heads``): the R50
semantic teacher with each pixel decoder and each inference order, interleaved the same way.
LV-Adapter cost (``--adapter``), all in one process and one run: training steps (batch 2) and
inference (cached text features) with / without the adapter, interleaved, on the R50 paper config
at 1280x720 (CLIP RN50 text tower, random weights) and on the demo's sample config at 256x144
(``configs/sample/lv_adapter_R18.yaml``: MiniLM),
where the text side's share of the step is timed too; and the R50 student with the adapter
against the three teachers. The text side alone (``--text-only``): learned prompts -> text
encoder -> projection, forward and backward, with all tasks in one pass over the text tower
against task by task, interleaved, in both settings. Its helpers (models with random weights,
interleaved medians) are ``tools/timing.py``, shared with ``tools/benchmark_export.py`` (the
ONNX export against eager) and ``projects/LaneMarking/tools/benchmark_lanes.py`` (lanes).
Models run on MODEL.DEVICE
(``MODEL.DEVICE cuda`` for a GPU; the timers then wait for the GPU). Config overrides
(KEY VALUE ...) at the end apply to every model.

    python tools/benchmark_speed.py --rounds 3
    python tools/benchmark_speed.py --train --steps 3
    python tools/benchmark_speed.py --heads --rounds 5
    python tools/benchmark_speed.py --adapter --steps 5 --rounds 5 MODEL.DEVICE cuda
    python tools/benchmark_speed.py --text-only --steps 20 MODEL.DEVICE cuda
    python tools/benchmark_speed.py --train --steps 3 MODEL.SEMANTIC_HEAD.PIXEL_DECODER light
"""
import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import ROOT, SIZE, load_model, median_inference_seconds, median_seconds, \
    scaled, timed, train_step, training_batch, where  # noqa: E402
from lv_adapter import build_config  # noqa: E402
from lv_adapter.modeling.segmentation import PIXEL_DECODERS, UPSAMPLE_ORDERS  # noqa: E402

MODELS = {  # name -> config under configs/
    "multi-task R50": "bdd100k/multitask_R50.yaml",
    "teacher detection R50": "bdd100k/teachers/teacher_detection_R50_full.yaml",
    "teacher semantic R50": "bdd100k/teachers/teacher_semantic_R50_full.yaml",
    "teacher drivable R50": "bdd100k/teachers/teacher_drivable_R50_full.yaml",
}

# --adapter: the LV-Adapter's cost. Off = the IdentityAdapter slot. On the R50 paper config:
# CLIP's RN50 text tower (random weights: no model hub; speed does not depend on them); on the
# sample config: MiniLM, the text encoder that config can use without a hub. Learned prompts.
NO_ADAPTER = ("MODEL.ADAPTER.NAME", "IdentityAdapter")
LV_CLIP_RN50 = ("MODEL.ADAPTER.NAME", "LVAdapter", "MODEL.ADAPTER.PROMPT.MODE", "learned",
                "MODEL.ADAPTER.TEXT_ENCODER.NAME", "OpenCLIPTextEncoder",
                "MODEL.ADAPTER.TEXT_ENCODER.MODEL", "RN50",
                "MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS", "")
# name -> (config, image size, overrides that turn the adapter on, repeat). ``repeat`` multiplies
# --steps and --rounds: the sample model takes ~35 ms an image against the R50's ~2.6 s, and a
# ratio of a few percent needs that many more repetitions to rise above the timer's noise.
ADAPTER_SETTINGS = {
    "R50 paper config": ("bdd100k/multitask_R50.yaml", SIZE, LV_CLIP_RN50, 1),
    # The demo's student as it is configured (MiniLM, 4 context vectors, the heads' 4 attention
    # heads and FFN width 256 in L2V); "no adapter" is the same config with the identity slot,
    # which is configs/sample/multitask_R18.yaml.
    "sample config": ("sample/lv_adapter_R18.yaml", (256, 144), (), 40),
}


# Also timed in the inference rounds: the multi-task model with NCHW convolutions, the baseline
# of MODEL.CHANNELS_LAST.
NCHW = "multi-task R50 NCHW"


def benchmark_inference(rounds, opts=()):
    models = {name: load_model(cfg, False, opts) for name, cfg in MODELS.items()}
    models[NCHW] = load_model(MODELS["multi-task R50"], False,
                              [*opts, "MODEL.CHANNELS_LAST", False])
    medians = median_inference_seconds(models, rounds)
    teachers = _print_against_teachers(medians, "multi-task R50", rounds, SIZE)
    print(f"  ratio channels-last / NCHW: {medians['multi-task R50'] / medians[NCHW]:.2f}")
    return teachers


def _print_against_teachers(medians, student, rounds, size):
    teachers = sum(v for k, v in medians.items() if k.startswith("teacher"))
    print(f"inference, {size[0]}x{size[1]}, {where()}, median of {rounds} rounds:")
    for name, sec in medians.items():
        print(f"  {name:34s} {sec:7.3f} s/image")
    print(f"  {'three teachers in turn':34s} {teachers:7.3f} s/image")
    print(f"  ratio {student} / teachers: {medians[student] / teachers:.2f} (target <= 0.5)")
    return teachers


def text_tower_step(model, one_pass=True):
    """A callable running the LV-Adapter's text side alone: prompts -> text encoder -> projection,
    forward and backward (the part of a training step the text tower costs), with every task's
    prompts in one pass over the text tower or (``one_pass`` False) task by task."""
    adapter = model.adapter

    def step():
        adapter.text.prompts.one_pass = one_pass
        adapter.zero_grad(set_to_none=True)
        adapter.text_features().sum().backward()
    return step


def benchmark_text_side(steps, opts=()):
    """The LV-Adapter's text side alone in both settings: one pass for all tasks against task by
    task, interleaved in one run (the image size does not matter here)."""
    for setting, (config, _, adapter, repeat) in ADAPTER_SETTINGS.items():
        print(f"== {setting} ({config}), {where()}; LV-Adapter: {_describe(config, adapter)}",
              flush=True)
        model = load_model(config, True, [*opts, *adapter])
        seconds = median_seconds({"all tasks in one pass": text_tower_step(model, True),
                                  "task by task": text_tower_step(model, False)},
                                 steps * repeat)
        print(f"text side (prompts + text encoder + projection, forward + backward), median of "
              f"{steps * repeat} after one warm-up:")
        for name, sec in seconds.items():
            print(f"  {name:34s} {sec * 1000:8.2f} ms")
        ratio = seconds["task by task"] / seconds["all tasks in one pass"]
        print(f"  ratio task by task / one pass: {ratio:.2f}")


def benchmark_adapter(steps, rounds, scale=1.0, opts=()):
    """The LV-Adapter's cost in one run: training step and inference (cached text features) with
    / without it on the R50 paper config and on the sample config, the text side's share of the
    step, and the R50 student with the adapter against the three teachers."""
    for setting, (config, size, adapter, repeat) in ADAPTER_SETTINGS.items():
        size = scaled(size, scale)
        repeat = repeat if scale == 1 else 1  # a scaled run only checks that the tool runs
        print(f"== {setting} ({config}), {size[0]}x{size[1]}, {where()}; LV-Adapter: "
              f"{_describe(config, adapter)}", flush=True)
        off, on = [*opts, *NO_ADAPTER], [*opts, *adapter]
        _adapter_training(config, size, off, on, steps * repeat)
        teachers = opts if setting == "R50 paper config" else None
        _adapter_inference(config, size, off, on, rounds * repeat, teachers)


def _describe(config, adapter_opts):
    """The text encoder, its weights and the prompt and L2V sizes the LV-Adapter runs with."""
    node = build_config(os.path.join(ROOT, "configs", config), list(adapter_opts)).MODEL.ADAPTER
    encoder = node.TEXT_ENCODER
    model = f" {encoder.MODEL}" if encoder.NAME == "OpenCLIPTextEncoder" else ""
    return (f"{encoder.NAME}{model} weights {encoder.WEIGHTS or 'random'!r}, {node.PROMPT.MODE} "
            f"prompts N_CTX {node.PROMPT.N_CTX}, L2V {node.L2V.NUM_LAYERS} layer(s), "
            f"{node.L2V.NHEADS} heads, FFN {node.L2V.DIM_FEEDFORWARD}")


def _adapter_training(config, size, off_opts, on_opts, steps):
    batch = training_batch(size)
    off, on = load_model(config, True, off_opts), load_model(config, True, on_opts)
    train = median_seconds({"no adapter": train_step(off, batch),
                            "LV-Adapter": train_step(on, batch),
                            "LV-Adapter text side alone": text_tower_step(on)}, steps)
    print(f"training step, batch {len(batch)}, median of {steps} after one warm-up:")
    for name, sec in train.items():
        print(f"  {name:34s} {sec:7.3f} s/step")
    print(f"  ratio LV-Adapter / no adapter: {train['LV-Adapter'] / train['no adapter']:.3f} "
          "(target <= 1.10)")
    share = train["LV-Adapter text side alone"] / train["LV-Adapter"]
    print(f"  text side (prompts + text encoder, forward + backward) / whole step: {share:.2f}")


def _adapter_inference(config, size, off_opts, on_opts, rounds, teacher_opts=None):
    """With ``teacher_opts`` (a list) the three R50 teachers run in the same rounds."""
    student = "LV-Adapter, cached text features"
    models = {"no adapter": load_model(config, False, off_opts),
              student: load_model(config, False, on_opts)}
    if teacher_opts is not None:
        models.update((name, load_model(cfg, False, teacher_opts)) for name, cfg in MODELS.items()
                      if name.startswith("teacher"))
    medians = median_inference_seconds(models, rounds, size)
    if teacher_opts is not None:
        _print_against_teachers(medians, student, rounds, size)
    else:
        print(f"inference, median of {rounds} rounds:")
        for name, sec in medians.items():
            print(f"  {name:34s} {sec:7.3f} s/image")
    ratio = medians[student] / medians["no adapter"]
    print(f"  ratio LV-Adapter (cached) / no adapter: {ratio:.3f} (target <= 1.03)")


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
    step = train_step(load_model(config_name, True, opts), training_batch())
    times = [timed(step) for _ in range(steps + 1)]  # the first step is warm-up
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
    parser.add_argument("--adapter", action="store_true",
                        help="the LV-Adapter's cost instead: training step and inference with / "
                        "without it on the R50 paper config and the sample config, the text "
                        "tower's share there, and the R50 student with it against the teachers")
    parser.add_argument("--text-only", action="store_true",
                        help="the LV-Adapter's text side alone instead: all tasks in one pass "
                        "over the text tower against task by task, in both settings")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="--adapter: image sizes times this (< 1 only for a quick check)")
    parser.add_argument("--child-train", help=argparse.SUPPRESS)
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides for every model (KEY VALUE ...)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.child_train:
        train_steps(args.child_train, args.steps, args.opts)
    elif args.train:
        benchmark_training(args.steps, args.opts)
    elif args.heads:
        benchmark_heads(args.rounds, args.opts)
    elif args.text_only:
        benchmark_text_side(args.steps, args.opts)
    elif args.adapter:
        benchmark_adapter(args.steps, args.rounds, args.scale, args.opts)
    else:
        benchmark_inference(args.rounds, args.opts)


if __name__ == "__main__":
    main()
