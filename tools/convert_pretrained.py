#!/usr/bin/env python
"""Convert a torchvision-layout ResNet checkpoint (MoCo v1/v2, SimCLR, SwAV, BYOL, DetCo,
DenseCL, torchvision itself) into detectron2 backbone weights for MODEL.WEIGHTS.

    python tools/convert_pretrained.py moco_v2_800ep_pretrain.pth.tar output/moco_v2_r50.pth
    python train_net.py --config-file CFG MODEL.WEIGHTS output/moco_v2_r50.pth

The output holds only ``backbone.bottom_up.*`` (the FPN and heads start from their own
initialisation, as with ImageNet weights). Use RESNETS.STRIDE_IN_1X1 False (torchvision's
stride in the 3x3 convolution) and the pixel mean/std the weights were trained with.
"""
import argparse

import torch

import lv_adapter  # noqa: F401  (first: makes detectron2.layers importable)
from lv_adapter.modeling.backbone.convert import convert_torchvision_resnet, load_checkpoint
from lv_adapter.utils.io import atomic_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the released checkpoint (.pth, .pth.tar, .pt)")
    parser.add_argument("output", help="detectron2 weights to write (.pth)")
    parser.add_argument("--prefix", default=None,
                        help="the encoder's key prefix, nested dicts joined by '.' (e.g. "
                             "'state_dict.module.encoder_q.'); found automatically if omitted")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow arbitrary pickled objects in INPUT (only for files you trust)")
    return parser.parse_args(argv)


def main(args):
    if not args.output.endswith(".pth"):
        raise SystemExit(f"output {args.output} must end with .pth (detectron2 reads .pkl "
                         "files as pickles, which this tool does not write)")
    checkpoint = load_checkpoint(args.input, args.trust_pickle)
    result = convert_torchvision_resnet(checkpoint, args.prefix, source=args.input)
    print(f"ResNet-{result.depth} found under prefix {result.encoder_prefix!r} of {args.input}")
    print(f"converted {len(result.weights)} tensors; missing: none")
    print(f"unused ({len(result.unused)}):" + "".join(f"\n  {row}" for row in result.unused))
    with atomic_path(args.output) as tmp:
        torch.save({"model": result.weights,
                    "__author__": f"tools/convert_pretrained.py from {args.input}"}, tmp)
    print(f"wrote {args.output}")
    return result


if __name__ == "__main__":
    main(parse_args())
