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

Box AP jumps where a detection's IoU crosses 0.5 (lv_adapter.deploy.parity): a box 5e-5 px away
can move AP50 by 0.01. When a box metric differs, the detections on such an edge are listed and
the exported detections are evaluated again with those few taken from PyTorch; the metric counts
as equal when that makes it equal (every detection is still held to the box and score limits).
"""
import os
import sys

import torch
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import train_net  # noqa: E402  (its test loader)
from lv_adapter.config import build_config  # noqa: E402
from lv_adapter.data.pseudo_labels import ground_truth_tasks  # noqa: E402
from lv_adapter.deploy.parity import ParityReport, edge_cases, take_from_eager  # noqa: E402
from lv_adapter.deploy.runtime import ExportedModel, check_matches_config  # noqa: E402
from lv_adapter.engine.predictor import Predictor  # noqa: E402
from lv_adapter.evaluation import build_multitask_evaluator, comparison_lines  # noqa: E402
from lv_adapter.evaluation.base import GroundTruth  # noqa: E402
from lv_adapter.projects import import_projects  # noqa: E402
from lv_adapter.tasks import DETECTION, get_task  # noqa: E402
from lv_adapter.utils.cli import config_tool_parser, parse_config_tool_args  # noqa: E402

LIMITS = {"box_max_px": 0.01, "score_max": 1e-4, "unmatched": 0}
MIN_AGREEMENT = 0.9999


def parse_args(argv=None):
    parser = config_tool_parser(__doc__)
    parser.add_argument("--exported", required=True, help="the export folder")
    parser.add_argument("--dataset", help="test set (default: DATASETS.TEST[0])")
    return parse_config_tool_args(parser, argv)


class Comparison:
    """One pass over a test set (module doc), kept for the report.

    Attributes:
        report (ParityReport): the worst differences per task.
        eager, exported (dict): both models' evaluation results.
        detections (list[tuple]): per image labeled for detection, ``(dataset dict, eager
            Instances, exported Instances)``.
    """

    def __init__(self, cfg, eager, exported, dataset):
        self.dataset = dataset
        loader = train_net.Trainer.build_test_loader(cfg, dataset)
        evaluators = [build_multitask_evaluator(cfg, dataset) for _ in range(2)]
        self.ground_truth = ground_truth = GroundTruth(dataset)
        self.report, self.detections = ParityReport(), []
        for evaluator in evaluators:
            evaluator.reset()
        for batch in tqdm(loader, desc=f"PyTorch and onnxruntime on {dataset}"):
            with torch.no_grad():
                ours = eager(batch)
            theirs = exported(batch)
            for x, a, b in zip(batch, ours, theirs):
                self.report.add(a, b, cfg.MODEL.TASKS)
                record = ground_truth.record(x["image_id"])
                if DETECTION in cfg.MODEL.TASKS and DETECTION in ground_truth_tasks(record):
                    self.detections.append((record, a["instances"], b["instances"]))
            evaluators[0].process(batch, ours)
            evaluators[1].process(batch, theirs)
        self.eager, self.exported = evaluators[0].evaluate(), evaluators[1].evaluate()

    def different(self):
        """The headline metric lines that differ."""
        return [line for line in comparison_lines(self.eager, self.exported)
                if line.endswith("DIFFERENT")]

    def explain_box_metrics(self):
        """(lines, bool): the detections on an edge of COCOeval, and the box metrics with those
        taken from PyTorch; True when that makes every box metric equal. Geometric edges (IoU,
        area) first; swapped near-equal scores too only when those are not enough."""
        for ranking in (False, True):
            cases = edge_cases(self.detections, ranking=ranking)
            lines = comparison_lines({"bbox": self.eager["bbox"]}, self._box_metrics(cases))
            equal = not any(line.endswith("DIFFERENT") for line in lines)
            if equal:
                break
        return self._case_lines(cases) + [
            f"with those {len(cases)} taken from PyTorch: {line}" for line in lines], equal

    def _box_metrics(self, cases):
        """The exported detections' box metrics with ``cases`` taken from PyTorch."""
        evaluator = get_task(DETECTION).build_evaluator(self.dataset,
                                                        ground_truth=self.ground_truth)
        evaluator.reset()
        evaluator.process([{"image_id": r["image_id"]} for r, _, _ in self.detections],
                          [{"instances": b} for b in take_from_eager(self.detections, cases)])
        return evaluator.evaluate()

    def _case_lines(self, cases, shown=5):
        lines = [f"{len(cases)} detection(s) on an edge of COCOeval (box AP jumps there):"]
        lines += [f"  image {self.detections[c.image][0]['image_id']}: {c.reason}"
                  for c in cases[:shown]]
        return lines + ([f"  ... and {len(cases) - shown} more"] if len(cases) > shown else [])


def failures(comparison):
    """What breaks the limits (module doc): (failure lines, explanation lines)."""
    bad = []
    for task, worst in comparison.report.worst.items():
        for key, value in worst.items():
            limit_ok = value >= MIN_AGREEMENT if key == "argmax_agreement" else (
                value <= LIMITS[key])
            if not limit_ok:
                bad.append(f"{task} {key} {value:.6g}")
    different = comparison.different()
    box_lines = [line for line in different
                 if line.startswith(get_task(DETECTION).short_name + " ")]
    explanation = []
    # Only detections that each hold the limits can be "on an edge"; otherwise the boxes differ.
    if box_lines and not [line for line in bad if line.startswith(DETECTION + " ")]:
        explanation, explained = comparison.explain_box_metrics()
        if explained:
            different = [line for line in different if line not in box_lines]
    return bad + different, explanation


def main(args):
    setup_logger(name="lv_adapter")
    import_projects(args.project)
    cfg = build_config(args.config_file, args.opts)
    exported = ExportedModel(args.exported)
    check_matches_config(exported.info, cfg, args.exported)
    dataset = args.dataset or cfg.DATASETS.TEST[0]
    comparison = Comparison(cfg, Predictor(cfg).model, exported, dataset)
    for line in comparison.report.lines() + comparison_lines(comparison.eager,
                                                             comparison.exported):
        print(line)
    bad, explanation = failures(comparison)
    for line in explanation:
        print(line)
    print("export parity: all within the limits" if not bad else
          "export parity FAILED: " + "; ".join(bad))
    quantized = exported.info.get("quantization")
    if quantized:
        print(f"(a {quantized['method']} export: the limits are a float export's; the metrics "
              "above are what quantization changes)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
