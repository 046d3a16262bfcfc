"""A dense lane head: every pixel's category, style and direction, predicted apart.

The alternative to a MaskFormer head over the 33 lane classes (``MODEL.HEADS.LANE``
"LaneDenseHead"). The FPN levels are fused at stride 4 by the pixel decoder the lane head node
names (``MODEL.LANE_HEAD.PIXEL_DECODER``), a 3x3 conv + ReLU (``CONVS_DIM`` wide) and a 1x1
conv predict 13 logits per pixel: 9 for the category (the 8 of BDD100K, then background), 2 for
the style, 2 for the direction. Training: cross-entropy of the category on every labeled pixel,
background weighted by ``MODEL.LANE_HEAD.BACKGROUND_WEIGHT`` (lanes are a few percent of the
pixels), and of style and direction on the lane pixels only, with the logits upsampled to
input size / ``LOSS_STRIDE`` (1 keeps one-pixel lines). Inference: the 33 class scores of the
lane task's contract, ``P(category) P(style) P(direction)`` for a lane class and
``P(background)`` for background, from logits upsampled to the input size; they sum to 1 per
pixel, so the pseudo-label confidence (a class's share) reads them as it reads MaskFormer's.
"""
import fvcore.nn.weight_init as weight_init
import torch
from detectron2.config import configurable
from detectron2.layers import Conv2d
from torch import nn
from torch.nn import functional as F

from lv_adapter.modeling.segmentation import PIXEL_DECODERS
from lv_adapter.modeling.segmentation.dense_targets import dense_targets
from lv_adapter.modeling.task_heads import TASK_HEAD_REGISTRY, feature_shapes
from lv_adapter.tasks import IGNORE_LABEL
from lv_lanes.encoding import BACKGROUND_CLASS, CATEGORIES, DIRECTIONS, STYLES
from lv_lanes.task import LANE

__all__ = ["LaneDenseHead", "class_scores"]

_CAT, _STYLE, _DIR = len(CATEGORIES) + 1, len(STYLES), len(DIRECTIONS)  # logits of each part
_LANE_IDS = torch.arange(BACKGROUND_CLASS)  # class id = category + 8 style + 16 direction


@TASK_HEAD_REGISTRY.register()
class LaneDenseHead(nn.Module):
    """Per-pixel category, style and direction of lane markings (module doc).

    Args:
        pixel_decoder (nn.Module): FPN levels (finest first) -> [B, C, H/4, W/4].
        in_features (list[str]): the FPN levels, finest first.
        hidden_dim (int): channels of the 3x3 conv.
        mask_dim (int): channels of the pixel decoder's output.
        stride (int): the finest level's stride (the logits' resolution).
        background_weight (float): cross-entropy weight of the background category.
        loss_stride (int): the losses run at input size / loss_stride.
    """

    TASKS = (LANE,)

    @configurable
    def __init__(self, *, pixel_decoder, in_features, hidden_dim, mask_dim, stride,
                 background_weight, loss_stride):
        super().__init__()
        self.pixel_decoder = pixel_decoder
        self.in_features = list(in_features)
        self.tower = Conv2d(mask_dim, hidden_dim, 3, padding=1, activation=F.relu)
        self.predict = Conv2d(hidden_dim, _CAT + _STYLE + _DIR, 1)
        for layer in (self.tower, self.predict):
            weight_init.c2_msra_fill(layer)
        self.stride, self.loss_stride = stride, loss_stride
        self.register_buffer("category_weight", torch.tensor(
            [1.0] * (_CAT - 1) + [background_weight]), persistent=False)

    @classmethod
    def from_config(cls, cfg, input_shape, task):
        node = cfg.MODEL.LANE_HEAD
        if node.PIXEL_DECODER not in PIXEL_DECODERS:
            raise ValueError(f"MODEL.LANE_HEAD.PIXEL_DECODER is {node.PIXEL_DECODER!r}; choose "
                             f"from {sorted(PIXEL_DECODERS)}")
        shapes = feature_shapes(input_shape, node.IN_FEATURES, "MODEL.LANE_HEAD.IN_FEATURES")
        in_features = sorted(shapes, key=lambda name: shapes[name].stride)
        return {
            "pixel_decoder": PIXEL_DECODERS[node.PIXEL_DECODER](
                [shapes[name].channels for name in in_features], conv_dim=node.CONVS_DIM,
                mask_dim=node.MASK_DIM, norm=node.NORM),
            "in_features": in_features,
            "hidden_dim": node.CONVS_DIM,
            "mask_dim": node.MASK_DIM,
            "stride": shapes[in_features[0]].stride,
            "background_weight": node.BACKGROUND_WEIGHT,
            "loss_stride": node.LOSS_STRIDE,
        }

    def forward(self, features, targets=None):
        """
        Args:
            features (dict[str, Tensor]): FPN maps [B, C, H_i, W_i].
            targets (list[dict] or None): training only; per image ``{"labels": [T], "masks":
                [T, H, W]}`` at the padded input size (the mask tasks' contract).

        Returns:
            tuple: training ``(None, {"loss_lane_category", "loss_lane_style",
            "loss_lane_direction"})``; inference ``([B, 33, H, W] class scores at the padded
            input size, {})``.
        """
        fused = self.pixel_decoder([features[name] for name in self.in_features])
        logits = self.predict(self.tower(fused))
        if self.training:
            if targets is None:
                raise ValueError("the lane head needs targets in training mode")
            return None, self.losses(logits, dense_targets(targets))
        size = [side * self.stride for side in logits.shape[-2:]]
        return class_scores(F.interpolate(logits, size, mode="bilinear", align_corners=False)), {}

    def losses(self, logits, labels):
        """The three cross-entropies (module doc); ``labels``: [B, H, W] class ids / 255."""
        labels = labels[:, ::self.loss_stride, ::self.loss_stride]
        logits = F.interpolate(logits, labels.shape[-2:], mode="bilinear", align_corners=False)
        lane = labels < BACKGROUND_CLASS
        ignored = torch.full_like(labels, IGNORE_LABEL)
        category = torch.where(lane, labels & 7, labels.clamp(max=_CAT - 1))
        category = torch.where(labels == IGNORE_LABEL, ignored, category)
        style = torch.where(lane, (labels >> 3) & 1, ignored)
        direction = torch.where(lane, labels >> 4, ignored)
        parts = logits.split([_CAT, _STYLE, _DIR], dim=1)
        return {
            "loss_lane_category": F.cross_entropy(parts[0], category, self.category_weight,
                                                  ignore_index=IGNORE_LABEL),
            "loss_lane_style": _lane_ce(parts[1], style),
            "loss_lane_direction": _lane_ce(parts[2], direction),
        }

    def loss_keys(self):
        """The keys of the training losses (for logging zeros when a batch lacks lanes)."""
        return ["loss_lane_category", "loss_lane_style", "loss_lane_direction"]


def _lane_ce(logits, target):
    """Cross-entropy over the lane pixels; 0 (with a gradient path) when a batch has none."""
    if not (target != IGNORE_LABEL).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, ignore_index=IGNORE_LABEL)


def class_scores(logits):
    """[B, 13, H, W] logits -> [B, 33, H, W] class scores (module doc); they sum to 1."""
    category, style, direction = (part.softmax(dim=1) for part in
                                  logits.split([_CAT, _STYLE, _DIR], dim=1))
    ids = _LANE_IDS.to(logits.device)
    lanes = category[:, ids & 7] * style[:, (ids >> 3) & 1] * direction[:, ids >> 4]
    return torch.cat([lanes, category[:, -1:]], dim=1)
