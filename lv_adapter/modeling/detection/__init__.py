"""Sparse R-CNN detection head: learnable proposals refined by dynamic stages, set loss."""
from lv_adapter.modeling.detection.criterion import SparseRCNNCriterion
from lv_adapter.modeling.detection.dynamic_head import DynamicInteraction, DynamicStage
from lv_adapter.modeling.detection.sparse_rcnn import SparseRCNNHead

__all__ = ["DynamicInteraction", "DynamicStage", "SparseRCNNCriterion", "SparseRCNNHead"]
