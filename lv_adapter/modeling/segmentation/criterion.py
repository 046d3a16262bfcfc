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
    """Bring binary target masks to the prediction resolution.

    Losses are computed at the mask prediction's stride-4 resolution, 16x fewer pixels than the
    input. A low-resolution pixel is inside a segment when at least half of its cell is (area
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
    Targets: per image ``{"labels": LongTensor[T], "masks": BoolTensor[T, H, W]}``, at any
    resolution (resized to h x w here).

    Args:
        task (str): task name for the loss keys ("semantic", "drivable").
        num_classes (int): K; index K is "no object".
        weights (dict[str, float]): weights of ``class``, ``mask`` and ``dice``.
        no_object_weight (float): cross-entropy weight of the "no object" class; small because
            most queries are unmatched.
        deep_supervision (bool): also score every earlier decoder layer.
        focal_alpha, focal_gamma (float): the focal loss's parameters.
    """

    def __init__(self, task, num_classes, weights, no_object_weight, deep_supervision=True,
                 focal_alpha=0.25, focal_gamma=2.0):
        super().__init__(task, weights, deep_supervision)
        self.num_classes = num_classes
        self.focal = {"alpha": focal_alpha, "gamma": focal_gamma}
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = no_object_weight
        # Not persistent: derived from the config, so checkpoints need not carry it.
        self.register_buffer("class_weight", class_weight, persistent=False)

    def forward(self, stage_outputs, targets):
        """Resize the target masks once for all stages, then score every stage (see base).

        Labels become int64: uint8 labels would index the class probabilities as a boolean mask.
        """
        size = stage_outputs[-1]["pred_masks"].shape[-2:]
        targets = [
            {"labels": t["labels"].long(), "masks": resize_target_masks(t["masks"], size)}
            for t in targets
        ]
        return super().forward(stage_outputs, targets)

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
        target_masks = torch.cat([t["masks"][tgt] for t, (_, tgt) in zip(targets, matches)])
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
