#!/usr/bin/env python
"""The demo (`make demo`): sample scenes -> summary -> ground truth drawings -> train the
multi-task model on the CPU -> evaluate on held-out scenes -> prediction drawings.

    DETECTRON2_DATASETS=datasets/sample python tools/demo.py --root datasets/sample

``--root`` must be the folder DETECTRON2_DATASETS points to: the registered dataset names read
from there.
"""
import argparse
import glob
import os
import sys

from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [TOOLS, os.path.dirname(TOOLS)]
import train_net  # noqa: E402
import visualize_data  # noqa: E402  (sibling tools)
import visualize_predictions  # noqa: E402

from lv_adapter.data.sample import write_sample_bdd100k  # noqa: E402
from lv_adapter.data.summary import format_summary, summarize  # noqa: E402
from lv_adapter.evaluation import metric_lines  # noqa: E402

CONFIG = os.path.join(os.path.dirname(TOOLS), "configs", "sample", "multitask_R18.yaml")


def describe_data(args):
    size = f"{args.width}x{args.height}"
    print(f"== 1. writing {args.num_images} sample scenes ({size}) to {args.root}")
    write_sample_bdd100k(args.root, args.num_images, args.width, args.height, seed=args.seed)
    print("== 2. what the sample holds")
    for name in ("bdd100k_multitask_train", "bdd100k_multitask_val"):
        print(format_summary(name, summarize(DatasetCatalog.get(name))))
    print("== 3. drawing ground truth")
    out = os.path.join(args.out, "ground_truth")
    paths = visualize_data.draw_ground_truth(
        "bdd100k_multitask_val", args.num_drawings, out, args.drawing_scale
    )
    print(f"wrote {len(paths)} drawings to {out}")


def train_and_evaluate(args):
    """Train with train_net.py's own code path; returns (results, model folder)."""
    print(f"== 4. training the multi-task model for {args.iters} iterations on the CPU")
    model_dir = os.path.join(args.out, "model")
    opts = ["SOLVER.MAX_ITER", str(args.iters), "OUTPUT_DIR", model_dir, "SEED", str(args.seed)]
    argv = ["--config-file", args.config_file] + opts
    results = train_net.main(default_argument_parser().parse_args(argv))
    print("== 5. held-out metrics (bdd100k_multitask_val)")
    for line in metric_lines(results):
        print(line)
    return results, model_dir


def draw_predictions(args, model_dir):
    print("== 6. drawing predictions on held-out images")
    images = sorted(glob.glob(os.path.join(args.root, "bdd100k", "images", "100k", "val", "*.jpg")))
    out = os.path.join(args.out, "predictions")
    weights = os.path.join(model_dir, "model_final.pth")
    visualize_predictions.main(visualize_predictions.parse_args(
        ["--config-file", args.config_file, "--input", *images[: args.num_drawings],
         "--output", out, "--confidence-threshold", "0.3", "--scale", str(args.drawing_scale),
         "MODEL.WEIGHTS", weights]
    ))


def main(args):
    if os.path.abspath(os.getenv("DETECTRON2_DATASETS", "datasets")) != os.path.abspath(args.root):
        sys.exit(f"set DETECTRON2_DATASETS={args.root} (the registered datasets read from there)")
    describe_data(args)
    if args.iters > 0:
        _, model_dir = train_and_evaluate(args)
        draw_predictions(args, model_dir)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="datasets/sample", help="datasets root to write")
    parser.add_argument("--config-file", default=CONFIG, help="the model to train")
    parser.add_argument("--out", default="demo_output", help="folder for drawings and results")
    parser.add_argument("--num-images", type=int, default=1200)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=2000, help="0: data steps only")
    parser.add_argument("--num-drawings", type=int, default=6)
    parser.add_argument("--drawing-scale", type=float, default=2.5,
                        help="drawing size / image size (the scenes are small)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
