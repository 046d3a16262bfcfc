"""MaskFormer's set loss: class cross-entropy, sigmoid focal mask loss and dice loss.

Predictions (one class distribution over K classes + "no object" and one mask logit map per
query) are matched one-to-one to the segments of each image by the shared Hungarian matcher;
:class:`SetCriterion` does the matching, weighting, naming and deep supervision.
"""
import torch
from torch.nn import functional as F

from lv_adapter.modeling.segmentation.losses import (
    dice_loss,
    focal_mask_loss,
    pairwise_dice_cost,
    pairwise_focal_cost,
)
from lv_adapter.modeling.set_criterion import SetCriterion


def resize_target_masks(masks, size):
    """Bring binary target masks to a lower resolution (the matching's, or the loss's).

    A low-resolution pixel is inside a segment when at least half of its cell is (area
    interpolation, then threshold): a per-cell majority vote, unlike nearest sampling, does not
    depend on which one of the cell's pixels is picked, and unlike soft area targets it keeps the
    targets binary, which :func:`pairwise_focal_cost` requires.

    Args:
        masks (Tensor): [T, H, W] bool or {0, 1} masks.
        size (tuple[int, int]): (h, w) of the predictions.

    Returns:
        Tensor: [T, h, w] float {0, 1} masks.
    """
    masks = masks.float()
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size))
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    return (F.interpolate(masks[None], size=size, mode="area")[0] >= 0.5).float()


class MaskFormerCriterion(SetCriterion):
    """Loss terms ``class``, ``mask`` (focal) and ``dice``.

    Outputs of a stage: ``{"pred_logits": [B, Q, K + 1], "pred_masks": [B, Q, h, w]}``.
    Targets: per image ``{"labels": LongTensor[T], "masks": BoolTensor[T, H, W]}`` at the
    (padded) input resolution.

    Two resolutions, as in MaskFormer: the Hungarian matching compares every query with every
    segment, so it runs at the prediction's resolution (targets downsampled); the losses score
    only the matched pairs, so they run at ``H / loss_stride`` (predictions upsampled
    bilinearly). At stride 1 thin segments (poles, fences, signs, a few pixels wide) keep their
    pixels; at the prediction's stride 4 a 2-pixel pole has no majority cell left and the head
    is never told it exists.

    Args:
        task (str): task name for the loss keys ("semantic", "drivable").
        num_classes (int): K; index K is "no object".
        weights (dict[str, float]): weights of ``class``, ``mask`` and ``dice``.
        no_object_weight (float): cross-entropy weight of the "no object" class; small because
            most queries are unmatched.
        deep_supervision (bool): also score every earlier decoder layer.
        focal_alpha, focal_gamma (float): the focal loss's parameters.
        loss_stride (int): the mask losses' resolution as a divisor of the target masks' size.
    """

    def __init__(self, task, num_classes, weights, no_object_weight, deep_supervision=True,
                 focal_alpha=0.25, focal_gamma=2.0, loss_stride=1):
        super().__init__(task, weights, deep_supervision)
        if loss_stride < 1:
            raise ValueError(f"loss_stride must be >= 1, got {loss_stride}")
        self.loss_stride = loss_stride
        self.num_classes = num_classes
        self.focal = {"alpha": focal_alpha, "gamma": focal_gamma}
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = no_object_weight
        # Not persistent: derived from the config, so checkpoints need not carry it.
        self.register_buffer("class_weight", class_weight, persistent=False)

    def forward(self, stage_outputs, targets):
        """Resize the target masks once for all stages, then score every stage (see base).

        Each target gets ``masks`` at the prediction's resolution (matching) and ``loss_masks``
        at the loss resolution. Labels become int64: uint8 labels would index the class
        probabilities as a boolean mask.
        """
        match_size = stage_outputs[-1]["pred_masks"].shape[-2:]
        targets = [self._prepare(t, match_size) for t in targets]
        return super().forward(stage_outputs, targets)

    def _prepare(self, target, match_size):
        height, width = target["masks"].shape[-2:]
        loss_size = (-(-height // self.loss_stride), -(-width // self.loss_stride))
        return {
            "labels": target["labels"].long(),
            "masks": resize_target_masks(target["masks"], match_size),
            "loss_masks": resize_target_masks(target["masks"], loss_size),
        }

    def pairwise_costs(self, outputs, targets):
        """Per image ``{"class": -p(target class), "mask": focal, "dice": dice}``, each [Q, T]."""
        probs = outputs["pred_logits"].softmax(-1)
        return [
            {
                "class": -prob[:, target["labels"]],
                "mask": pairwise_focal_cost(masks, target["masks"], **self.focal),
                "dice": pairwise_dice_cost(masks, target["masks"]),
            }
            for prob, masks, target in zip(probs, outputs["pred_masks"], targets)
        ]

    def loss_terms(self, outputs, targets, matches, num_targets):
        """``class``: weighted mean cross-entropy over all queries (unmatched -> no object);
        ``mask``, ``dice``: summed over matched pairs, divided by ``num_targets``."""
        pred_masks = torch.cat([m[pred] for m, (pred, _) in zip(outputs["pred_masks"], matches)])
        target_masks = torch.cat([t["loss_masks"][tgt] for t, (_, tgt) in zip(targets, matches)])
        if pred_masks.shape[-2:] != target_masks.shape[-2:]:
            # Also with no matched pair: the empty result keeps the loss in the graph.
            pred_masks = F.interpolate(
                pred_masks[:, None], size=target_masks.shape[-2:], mode="bilinear",
                align_corners=False,
            )[:, 0]
        return {
            "class": self.class_loss(outputs["pred_logits"], targets, matches),
            "mask": focal_mask_loss(pred_masks, target_masks, **self.focal).sum() / num_targets,
            "dice": dice_loss(pred_masks, target_masks).sum() / num_targets,
        }

    def class_loss(self, logits, targets, matches):
        """Cross-entropy of [B, Q, K + 1] logits; unmatched queries' target is K (no object)."""
        target_classes = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device
        )
        for image_classes, target, (pred, tgt) in zip(target_classes, targets, matches):
            image_classes[pred] = target["labels"][tgt]
        return F.cross_entropy(logits.transpose(1, 2).float(), target_classes, self.class_weight)
