"""The project's config keys: MODEL.FCOS for the convolutional detection head.

The segmentation head needs none: it reads its task's node (MODEL.SEMANTIC_HEAD /
MODEL.DRIVABLE_HEAD). Defaults are FCOS's published R50-FPN setting, except the levels: the
shared FPN gives p2..p6, and FCOS runs on p3..p6 of them (its paper adds a p7 this FPN lacks).
"""
from detectron2.config import CfgNode as CN

from lv_adapter.config import register_project_config


@register_project_config
def add_conv_heads_config(cfg):
    """Add MODEL.FCOS with its defaults to ``cfg`` (in place)."""
    cfg.MODEL.FCOS = CN({
        "IN_FEATURES": ["p3", "p4", "p5", "p6"],
        # 3x3 conv (+ norm + ReLU) layers of each tower, at the FPN's width.
        "NUM_CONVS": 4,
        "NORM": "GN",
        "PRIOR_PROB": 0.01,
        # Locations within this many strides of a box's center are its positives.
        "CENTER_SAMPLING_RADIUS": 1.5,
        "FOCAL_LOSS_ALPHA": 0.25,
        "FOCAL_LOSS_GAMMA": 2.0,
        # Low enough for AP (every detection counts on the precision-recall curve).
        "SCORE_THRESH_TEST": 0.05,
        "TOPK_CANDIDATES_TEST": 1000,
        "NMS_THRESH_TEST": 0.6,
    })
