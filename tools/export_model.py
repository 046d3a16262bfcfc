#!/usr/bin/env python
"""Export a trained model to ONNX (or TorchScript): one graph, the language priors baked in.

    python tools/export_model.py --config-file configs/sample/lv_adapter_R18.yaml \\
        --output output/export [--format onnx|torchscript] [--int8] [--sample-image IMG] \\
        [--project projects/LaneMarking] MODEL.WEIGHTS output/model_final.pth [KEY VALUE ...]

Writes ``--output/model.onnx`` (or ``model.ts``) and ``export.json`` (tasks, class names, input
format and size, the weights' sha256); lv_adapter/deploy/export.py says what the graph does and
what stays outside it. The graph's input size is the test resize of the sample image
(``--sample-image``, default: the first image of ``DATASETS.TEST[0]``); the runtime refuses other
sizes. An LV-Adapter model whose config reads no text-features file gets one first
(tools/dump_text_features.py, in a process of its own: this one never imports the text
encoder). After the export, the ONNX graph runs on the sample image with onnxruntime and the
largest differences from PyTorch are printed. ``--int8`` quantizes the ONNX graph (dynamic int8,
lv_adapter/deploy/quantize.py) before that check; its metrics against PyTorch's come from
tools/check_export_parity.py.

Run the export with ``train_net.py --eval-only --exported DIR`` (metrics), or
``tools/visualize_predictions.py --exported DIR`` (drawings).
"""
import logging
import os
import subprocess
import sys

import torch
from detectron2.utils.logger import setup_logger

import lv_adapter  # noqa: F401  (registers the datasets)
from lv_adapter.config import build_config
from lv_adapter.deploy.export import GRAPH_FILES, ExportError, export_model, sample_input
from lv_adapter.deploy.parity import ParityReport
from lv_adapter.deploy.quantize import quantize_export
from lv_adapter.engine.predictor import Predictor
from lv_adapter.projects import import_projects
from lv_adapter.utils.cli import check_writable_folder, config_tool_parser, parse_config_tool_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
logger = logging.getLogger("lv_adapter.export_model")
TEXT_FILE_KEY = "MODEL.ADAPTER.TEXT_FEATURES_FILE"


def parse_args(argv=None):
    parser = config_tool_parser(__doc__)
    parser.add_argument("--output", required=True, help="folder for the graph and export.json")
    parser.add_argument("--format", default="onnx", choices=sorted(GRAPH_FILES))
    parser.add_argument("--int8", action="store_true",
                        help="quantize the ONNX graph: dynamic int8, about 4x smaller, but 2-3x "
                        "slower on the CPUs measured (BENCHMARKS.md)")
    parser.add_argument("--sample-image", help="image to trace with (default: the first image "
                        "of DATASETS.TEST[0])")
    args = parse_config_tool_args(parser, argv)
    if args.int8 and args.format != "onnx":
        parser.error("--int8 quantizes an ONNX graph: it cannot go with --format torchscript")
    return args


def load_config(args):
    """The config, with a text-features file for an LV-Adapter model that lacks one."""
    cfg = build_config(args.config_file, args.opts)
    weights = cfg.MODEL.WEIGHTS
    if not weights:
        raise ValueError("MODEL.WEIGHTS is empty: give the trained checkpoint to export")
    if "://" not in weights and not os.path.isfile(weights):
        raise FileNotFoundError(f"MODEL.WEIGHTS: checkpoint {weights} not found")
    if cfg.MODEL.ADAPTER.NAME == "LVAdapter" and not cfg.MODEL.ADAPTER.TEXT_FEATURES_FILE:
        features = dump_text_features(args, os.path.join(args.output, "text_features.pth"))
        cfg = build_config(args.config_file, [*args.opts, TEXT_FILE_KEY, features])
    return cfg


def dump_text_features(args, output):
    """Run tools/dump_text_features.py in its own process; return the file it wrote."""
    cmd = [sys.executable, os.path.join(ROOT, "tools", "dump_text_features.py"),
           "--config-file", args.config_file, "--output", output]
    cmd += [part for folder in args.project for part in ("--project", folder)] + args.opts
    logger.info("The LV-Adapter's text features: running tools/dump_text_features.py")
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ExportError(f"tools/dump_text_features.py failed:\n{done.stderr[-2000:]}")
    return output


def check_on_sample(model, folder, sample, tasks):
    """The exported graph against PyTorch on the sample image: the report's lines."""
    from lv_adapter.deploy.runtime import ExportedModel

    with torch.no_grad():
        eager = model([sample])[0]
    exported = ExportedModel(folder)([sample])[0]
    report = ParityReport()
    report.add(eager, exported, tasks)
    return report.lines()


def main(args):
    import_projects(args.project)
    check_writable_folder(args.output, "--output")
    cfg = load_config(args)
    model = Predictor(cfg).model  # weights loaded (strictly), eval mode, frozen norms folded
    sample = sample_input(cfg, args.sample_image)
    image = sample["image"].float()
    info = export_model(cfg, model, image, args.output, args.format,
                        weights=cfg.MODEL.WEIGHTS, config_file=args.config_file)
    if args.int8:
        info = quantize_export(args.output)
        logger.info(f"Quantized the graph: {info['quantization']['method']}")
    text_encoders = sorted(m for m in ("open_clip", "transformers") if m in sys.modules)
    logger.info(f"Exported {', '.join(info['tasks'])} at {info['input']['width']}x"
                f"{info['input']['height']} to {os.path.join(args.output, info['graph'])} "
                f"(text-encoder packages imported: {text_encoders or 'none'})")
    if args.format == "onnx":
        for line in check_on_sample(model, args.output, sample, info["tasks"]):
            logger.info(f"onnxruntime vs PyTorch on {sample['file_name']}: {line}")
    return info


if __name__ == "__main__":
    setup_logger(name="lv_adapter")
    setup_logger(name="fvcore")
    try:
        main(parse_args())
    except (ExportError, ValueError, FileNotFoundError) as e:
        sys.exit(f"export_model: {e}")
