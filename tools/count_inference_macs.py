#!/usr/bin/env python
"""Count the multiply-adds of one inference of the multi-task student and of the three teachers,
part by part: the ResNet, the FPN, the adapter and each head (the MaskFormer heads split into
pixel decoder and transformer predictor).

This is the arithmetic behind "student / three teachers in turn" of ``benchmark_speed.py``:
the student runs one backbone and every head, the teachers three backbones and the same heads,
so the ratio can reach 0.5 only if one backbone costs at least as much as all heads together.
The count is exact (fvcore, one per multiply-add, fvcore's FlopCountAnalysis),
independent of the weights (random ones are used) and of the machine, so it needs no quiet
machine and holds for the CPU and the GPU alike:

    python tools/count_inference_macs.py                      # the R50 paper configs, 1280x720
    python tools/count_inference_macs.py --json macs.json MODEL.SEMANTIC_HEAD.PIXEL_DECODER light \
        MODEL.DRIVABLE_HEAD.PIXEL_DECODER light              # the CPU-sized pixel decoder
"""
import argparse
import logging
import os

import torch
from detectron2.modeling import build_model
from fvcore.nn import FlopCountAnalysis
from torch import nn

from benchmark_speed import LV_CLIP_RN50, MODELS as SPEED_MODELS  # tools/ is on the path
from lv_adapter import build_config
from lv_adapter.utils.io import write_json

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# name -> (config under configs/, overrides): what benchmark_speed.py times, the student with
# the LV-Adapter (CLIP RN50 text tower; its features are cached at inference, as there).
MODELS = {
    "student": (SPEED_MODELS["multi-task R50"], LV_CLIP_RN50),
    **{name: (config, ()) for name, config in SPEED_MODELS.items() if name.startswith("teacher")},
}
# part name -> module name prefix in the model; every multiply-add falls in exactly one part.
PARTS = {
    "ResNet": "backbone.bottom_up",
    "FPN": "backbone",  # what the backbone counts beyond its bottom-up part
    "adapter": "adapter",
    "detection head": "heads.detection",
    "semantic pixel decoder": "heads.semantic.pixel_decoder",
    "semantic predictor + inference": "heads.semantic",
    "drivable pixel decoder": "heads.drivable.pixel_decoder",
    "drivable predictor + inference": "heads.drivable",
}


class _Outputs(nn.Module):
    """The model on one image, its outputs as a tuple of tensors (what tracing can follow)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, image):
        height, width = image.shape[-2:]
        out = self.model([{"image": image, "height": height, "width": width}])[0]
        flat = []
        for key, value in sorted(out.items()):
            if key == "instances":
                flat += [value.pred_boxes.tensor, value.scores, value.pred_classes]
            else:
                flat.append(value)
        return tuple(flat)


def count(config, size, opts):
    """{part: multiply-adds} of one inference of ``config`` on a ``size`` (width, height) image."""
    cfg = build_config(os.path.join(ROOT, "configs", config), [*opts, "MODEL.DEVICE", "cpu"])
    torch.manual_seed(0)
    model = _Outputs(build_model(cfg).eval())
    width, height = size
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8)
    with torch.no_grad():
        model(image)  # fills the adapter's text-feature cache, as inference runs with it
        analysis = FlopCountAnalysis(model, (image,))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_module = {name[len("model."):]: n for name, n in analysis.by_module().items()
                     if name.startswith("model.")}
        total = analysis.total()
    return _parts(by_module, total)


def _parts(by_module, total):
    """Split the total by PARTS, inner prefixes first, so that no multiply-add counts twice."""
    parts, taken = {}, 0
    for name, prefix in sorted(PARTS.items(), key=lambda kv: -len(kv[1])):
        inner = sum(parts[n] for n, p in PARTS.items()
                    if n in parts and p.startswith(prefix + "."))
        parts[name] = by_module.get(prefix, 0) - inner
        taken += parts[name]
    parts["rest (pre- and post-processing)"] = total - taken
    return {name: parts[name] for name in [*PARTS, "rest (pre- and post-processing)"]}


def report(counts):
    names = list(counts)
    width = max(map(len, [*PARTS, "rest (pre- and post-processing)"])) + 2
    print("multiply-adds, G, of one inference:")
    print(" " * width + "".join(f"{n:>20s}" for n in names))
    for part in counts[names[0]]:
        print(f"{part:{width}s}" + "".join(f"{counts[n][part] / 1e9:20.1f}" for n in names))
    totals = {n: sum(c.values()) for n, c in counts.items()}
    print(f"{'total':{width}s}" + "".join(f"{totals[n] / 1e9:20.1f}" for n in names))
    teachers = sum(v for n, v in totals.items() if n.startswith("teacher"))
    ratio = totals["student"] / teachers
    student = counts["student"]
    backbone = student["ResNet"] + student["FPN"]
    heads = sum(v for k, v in student.items() if k not in ("ResNet", "FPN", "adapter"))
    print(f"student / three teachers in turn: {ratio:.2f} (<= 0.5 needs one backbone >= all "
          f"heads: backbone {backbone / 1e9:.1f} G, heads {heads / 1e9:.1f} G)")
    return {"G_multiply_adds": {n: {p: v / 1e9 for p, v in c.items()} for n, c in counts.items()},
            "totals_G": {n: v / 1e9 for n, v in totals.items()}, "student_over_teachers": ratio}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--json", help="also write the counts here")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides for every model (KEY VALUE ...)")
    args = parser.parse_args(argv)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    counts = {name: count(config, (args.width, args.height), [*model_opts, *args.opts])
              for name, (config, model_opts) in MODELS.items()}
    result = report(counts)
    if args.json:
        write_json(args.json, {"size": [args.width, args.height], "opts": args.opts, **result})


if __name__ == "__main__":
    main()
