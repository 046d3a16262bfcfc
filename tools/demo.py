#!/usr/bin/env python
"""The demo (`make demo`): sample scenes -> summary -> ground-truth drawings.

    DETECTRON2_DATASETS=datasets/sample python tools/demo.py --root datasets/sample

``--root`` must be the folder DETECTRON2_DATASETS points to: the registered dataset names read
from there.
"""
import argparse
import os
import sys

from detectron2.data import DatasetCatalog

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import visualize_data  # noqa: E402  (a sibling tool)

from lv_adapter.data.sample import write_sample_bdd100k  # noqa: E402
from lv_adapter.data.summary import format_summary, summarize  # noqa: E402


def main(args):
    if os.path.abspath(os.getenv("DETECTRON2_DATASETS", "datasets")) != os.path.abspath(args.root):
        sys.exit(f"set DETECTRON2_DATASETS={args.root} (the registered datasets read from there)")
    size = f"{args.width}x{args.height}"
    print(f"== 1. writing {args.num_images} sample scenes ({size}) to {args.root}")
    write_sample_bdd100k(args.root, args.num_images, args.width, args.height, seed=args.seed)
    print("== 2. what the sample holds")
    for name in ("bdd100k_multitask_train", "bdd100k_multitask_val"):
        print(format_summary(name, summarize(DatasetCatalog.get(name))))
    print("== 3. drawing ground truth")
    out = os.path.join(args.out, "ground_truth")
    paths = visualize_data.draw_ground_truth("bdd100k_multitask_val", args.num_drawings, out)
    print(f"wrote {len(paths)} drawings to {out}")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="datasets/sample", help="datasets root to write")
    parser.add_argument("--out", default="demo_output", help="folder for drawings and results")
    parser.add_argument("--num-images", type=int, default=80)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num-drawings", type=int, default=6)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
