"""MaskFormer heads for semantic and drivable-area segmentation."""
from lv_adapter.modeling.segmentation.criterion import MaskFormerCriterion, resize_target_masks
from lv_adapter.modeling.segmentation.inference import UPSAMPLE_ORDERS, semantic_inference
from lv_adapter.modeling.segmentation.losses import (
    dice_loss,
    focal_mask_loss,
    pairwise_dice_cost,
    pairwise_focal_cost,
)
from lv_adapter.modeling.segmentation.mask_former import MaskFormerHead
from lv_adapter.modeling.segmentation.pixel_decoder import (
    PIXEL_DECODERS,
    LightPixelDecoder,
    MaskFormerPixelDecoder,
)
from lv_adapter.modeling.segmentation.predictor import MaskFormerPredictor

__all__ = [
    "MaskFormerCriterion",
    "MaskFormerHead",
    "MaskFormerPredictor",
    "PIXEL_DECODERS",
    "UPSAMPLE_ORDERS",
    "LightPixelDecoder",
    "MaskFormerPixelDecoder",
    "dice_loss",
    "focal_mask_loss",
    "pairwise_dice_cost",
    "pairwise_focal_cost",
    "resize_target_masks",
    "semantic_inference",
]
