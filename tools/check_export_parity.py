#!/usr/bin/env python
"""Check: an exported model (tools/export_model.py) answers as its PyTorch model does, on every
image of a test set.

    python tools/check_export_parity.py --config-file configs/sample/lv_adapter_R18.yaml \\
        --exported output/export [--dataset bdd100k_multitask_val] [--project DIR] \\
        MODEL.WEIGHTS demo_output/model/model_final.pth

One pass over the test loader runs both models on each image: detections are matched (same
class, nearest box) and their largest box (pixels) and score differences kept, segmentation
argmax agreement kept per task; both outputs also go through the same evaluator. Prints the
worst case per task and each metric of both; exits 1 unless boxes are within 0.01 px, scores
within 1e-4, argmaxes agree on at least 99.99 % of the pixels and every metric is equal to two
decimals.
"""
import argparse
import os
import sys

import torch
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_net  # noqa: E402  (its test loader)
from lv_adapter.config import build_config  # noqa: E402
from lv_adapter.deploy.parity import ParityReport  # noqa: E402
from lv_adapter.deploy.runtime import ExportedModel, check_matches_config  # noqa: E402
from lv_adapter.engine.predictor import Predictor  # noqa: E402
from lv_adapter.evaluation import build_multitask_evaluator, comparison_lines  # noqa: E402
from lv_adapter.projects import add_project_argument, import_projects  # noqa: E402
from lv_adapter.utils.cli import check_opts_last  # noqa: E402

LIMITS = {"box_max_px": 0.01, "score_max": 1e-4, "unmatched": 0}
MIN_AGREEMENT = 0.9999


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--exported", required=True, help="the export folder")
    parser.add_argument("--dataset", help="test set (default: DATASETS.TEST[0])")
    add_project_argument(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides: KEY VALUE ...")
    args = parser.parse_args(argv)
    check_opts_last(parser, args.opts)
    return args


def compare(cfg, eager, exported, dataset):
    """One pass (module doc): (ParityReport, eager results, exported results)."""
    loader = train_net.Trainer.build_test_loader(cfg, dataset)
    evaluators = [build_multitask_evaluator(cfg, dataset) for _ in range(2)]
    report = ParityReport()
    for evaluator in evaluators:
        evaluator.reset()
    for batch in tqdm(loader, desc=f"PyTorch and onnxruntime on {dataset}"):
        with torch.no_grad():
            ours = eager(batch)
        theirs = exported(batch)
        for a, b in zip(ours, theirs):
            report.add(a, b, cfg.MODEL.TASKS)
        evaluators[0].process(batch, ours)
        evaluators[1].process(batch, theirs)
    return report, evaluators[0].evaluate(), evaluators[1].evaluate()


def failures(report, eager_results, exported_results):
    """What breaks the limits (module doc): a list of lines, empty when all hold."""
    bad = []
    for task, worst in report.worst.items():
        for key, value in worst.items():
            limit_ok = value >= MIN_AGREEMENT if key == "argmax_agreement" else (
                value <= LIMITS[key])
            if not limit_ok:
                bad.append(f"{task} {key} {value:.6g}")
    bad += [line for line in comparison_lines(eager_results, exported_results)
            if line.endswith("DIFFERENT")]
    return bad


def main(args):
    setup_logger(name="lv_adapter")
    import_projects(args.project)
    cfg = build_config(args.config_file, args.opts)
    exported = ExportedModel(args.exported)
    check_matches_config(exported.info, cfg, args.exported)
    dataset = args.dataset or cfg.DATASETS.TEST[0]
    report, eager_results, exported_results = compare(cfg, Predictor(cfg).model, exported,
                                                      dataset)
    for line in report.lines() + comparison_lines(eager_results, exported_results):
        print(line)
    bad = failures(report, eager_results, exported_results)
    print("export parity: all within the limits" if not bad else
          "export parity FAILED: " + "; ".join(bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
