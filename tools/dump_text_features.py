#!/usr/bin/env python
"""Write a trained LV-Adapter model's text features to a file, for inference without the text
encoder.

    python tools/dump_text_features.py --config-file configs/sample/multitask_R18.yaml \
        [--output FILE] MODEL.WEIGHTS output/model_final.pth
    python train_net.py --config-file configs/sample/multitask_R18.yaml --eval-only \
        MODEL.WEIGHTS output/model_final.pth MODEL.ADAPTER.TEXT_FEATURES_FILE FILE

The prompts are run once through the text encoder with the checkpoint's learned context; the
file holds per-task [C_task, D] features plus the tasks, class counts, text-encoder and prompt
settings and the weights they came from. The default output is OUTPUT_DIR/text_features.pth.
"""
import json
import logging
import os

import torch
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger

from lv_adapter.config import build_config
from lv_adapter.engine import SafeCheckpointer
from lv_adapter.modeling.adapter import LVAdapter
from lv_adapter.modeling.adapter.text_features import save_text_features
from lv_adapter.projects import import_projects
from lv_adapter.utils.cli import check_writable_file, config_tool_parser, parse_config_tool_args

logger = logging.getLogger("lv_adapter.dump_text_features")


def parse_args(argv=None):
    parser = config_tool_parser(__doc__)
    parser.add_argument("--output", default=None,
                        help="file to write (default: OUTPUT_DIR/text_features.pth)")
    return parse_config_tool_args(parser, argv)


def _plain(node):
    """A CfgNode (or None) as plain dicts and lists, which torch.load(weights_only=True) reads."""
    return json.loads(json.dumps(node)) if node is not None else None


def text_features_of(cfg):
    """Build the model of ``cfg``, load ``MODEL.WEIGHTS``, return its text features per task."""
    if cfg.MODEL.ADAPTER.NAME != "LVAdapter":
        raise ValueError(f"MODEL.ADAPTER.NAME is {cfg.MODEL.ADAPTER.NAME!r}: only the LVAdapter "
                         "has text features")
    if cfg.MODEL.ADAPTER.TEXT_FEATURES_FILE:
        raise ValueError(
            "MODEL.ADAPTER.TEXT_FEATURES_FILE is set "
            f"({cfg.MODEL.ADAPTER.TEXT_FEATURES_FILE}): that model reads its text features from "
            "the file; dump with the config that runs the text encoder"
        )
    model = build_model(cfg)
    assert isinstance(model.adapter, LVAdapter)
    if cfg.MODEL.WEIGHTS:
        SafeCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    else:
        logger.warning("MODEL.WEIGHTS is empty: learned prompt contexts keep their initial values")
    with torch.no_grad():
        return model.adapter.text.eval()()


def main(args):
    import_projects(args.project)
    cfg = build_config(args.config_file, args.opts)
    output = args.output or os.path.join(cfg.OUTPUT_DIR, "text_features.pth")
    check_writable_file(output, "--output" if args.output else "OUTPUT_DIR")
    features = text_features_of(cfg)
    save_text_features(
        output, features,
        encoder=_plain(cfg.MODEL.ADAPTER.get("TEXT_ENCODER")),
        prompt=_plain(cfg.MODEL.ADAPTER.get("PROMPT")),
        weights=cfg.MODEL.WEIGHTS, config_file=args.config_file,
    )
    counts = {task: tuple(f.shape) for task, f in features.items()}
    logger.info(f"Wrote text features {counts} to {output}; use it with "
                f"MODEL.ADAPTER.TEXT_FEATURES_FILE {output}")
    return output


if __name__ == "__main__":
    setup_logger(name="lv_adapter")
    setup_logger(name="fvcore")
    main(parse_args())
