#!/usr/bin/env python
"""Benchmark: the ONNX export run by onnxruntime against the PyTorch model (eager), per image.

For the student and each teacher of two settings (the R50 paper config at 1280x720 and the
sample config, R18, at 256x144): each model built with random weights (speed does not depend on
them), exported at the size it is timed at, and timed interleaved with its eager self over rounds
in one process (``timing.median_inference_seconds``); postprocessing to the original
size is included on both sides. onnxruntime gets as many intra-op threads as torch. Models run
on MODEL.DEVICE (and onnxruntime on the CUDA provider where it has one). ``--int8``: the dynamic
int8 quantization of each export (lv_adapter/deploy/quantize.py) is timed in the same rounds.

    python tools/benchmark_export.py --rounds 5 [--int8]
    python tools/benchmark_export.py --rounds 5 MODEL.DEVICE cuda
"""
import os
import shutil
import sys
import tempfile

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchmark_speed import MODELS  # noqa: E402
from timing import SIZE, load_model, median_inference_seconds, model_config, \
    parse_timing_args, random_image, scaled, where  # noqa: E402
from lv_adapter.deploy import ExportedModel, export_model  # noqa: E402
from lv_adapter.deploy.quantize import quantize_export  # noqa: E402

# setting -> ({name: config under configs/}, (width, height), repeat). ``repeat`` multiplies
# --rounds: a sample model takes ~30 ms an image against the R50's seconds, and its median needs
# that many more rounds to settle (5 rounds gave ratios from 0.60 to 0.81 for one model).
SETTINGS = {
    "R50 paper config": (MODELS, SIZE, 1),
    "sample config (R18)": ({
        "multi-task R18": "sample/multitask_R18.yaml",
        "teacher detection R18": "sample/teacher_detection_R18.yaml",
        "teacher semantic R18": "sample/teacher_semantic_R18.yaml",
        "teacher drivable R18": "sample/teacher_drivable_R18.yaml",
    }, (256, 144), 20),
}


def exported_models(configs, size, folder, int8=False, opts=()):
    """{"<name> eager": model, "<name> onnxruntime": its export[, "<name> int8": the export
    quantized]} for ``configs`` (name -> config under configs/), each exported into ``folder``
    at ``size`` (width, height)."""
    models = {}
    for name, config in tqdm(configs.items(), desc="exporting"):
        model = load_model(config, False, opts)
        out = os.path.join(folder, name.replace(" ", "_"))
        export_model(model_config(config, opts), model, random_image(0, size).float(), out)
        models[f"{name} eager"] = model
        models[f"{name} onnxruntime"] = ExportedModel(out, threads=torch.get_num_threads())
        if int8:
            shutil.copytree(out, out + "_int8")
            quantize_export(out + "_int8")
            models[f"{name} int8"] = ExportedModel(out + "_int8", threads=torch.get_num_threads())
    return models


def benchmark(rounds, scale=1.0, int8=False, opts=()):
    """Print, per setting and model, the medians and the ratios onnxruntime / eager."""
    for setting, (configs, size, repeat) in SETTINGS.items():
        size = scaled(size, scale)
        rounds_here = rounds * repeat if scale == 1 else rounds  # scaled: a check that it runs
        with tempfile.TemporaryDirectory() as folder:
            medians = median_inference_seconds(exported_models(configs, size, folder, int8, opts),
                                               rounds_here, size)
        print(f"== {setting}: inference, {size[0]}x{size[1]}, {where()} (onnxruntime: "
              f"{torch.get_num_threads()} intra-op threads), median of {rounds_here} rounds:")
        for name in configs:
            eager, onnx = medians[f"{name} eager"], medians[f"{name} onnxruntime"]
            print(f"  {name:24s} eager {eager:7.3f} s, onnxruntime {onnx:7.3f} s/image, ratio "
                  f"onnxruntime / eager: {onnx / eager:.2f} (target <= 0.8)")
            if int8:
                quantized = medians[f"{name} int8"]
                print(f"  {name:24s} int8 {quantized:7.3f} s/image, ratio int8 / eager: "
                      f"{quantized / eager:.2f}, int8 / onnxruntime float: {quantized / onnx:.2f}")


def main(argv=None):
    args = parse_timing_args(__doc__, argv, steps=False, flags={
        "--int8": "also the dynamic int8 quantization of each export"})
    benchmark(args.rounds, args.scale, args.int8, args.opts)


if __name__ == "__main__":
    main()
