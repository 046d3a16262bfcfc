"""Evaluators of the three BDD100K tasks and the multi-task evaluator that combines them."""
from lv_adapter.evaluation.base import GroundTruth, TaskEvaluator
from lv_adapter.evaluation.build import build_multitask_evaluator
from lv_adapter.evaluation.detection import DetectionEvaluator
from lv_adapter.evaluation.report import comparison_lines, metric_lines
from lv_adapter.evaluation.segmentation import SegmentationEvaluator

__all__ = [
    "DetectionEvaluator",
    "GroundTruth",
    "SegmentationEvaluator",
    "TaskEvaluator",
    "build_multitask_evaluator",
    "comparison_lines",
    "metric_lines",
]
