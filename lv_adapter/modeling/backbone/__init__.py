"""Backbones beyond detectron2's own: importing this registers them in BACKBONE_REGISTRY."""
from lv_adapter.modeling.backbone.clip_resnet import (
    ClipResNet,
    build_clip_resnet_backbone,
    build_clip_resnet_fpn_backbone,
)

__all__ = ["ClipResNet", "build_clip_resnet_backbone", "build_clip_resnet_fpn_backbone"]
