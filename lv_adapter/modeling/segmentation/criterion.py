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


def resize_target_masks(masks, size, mode="majority"):
    """Bring binary target masks to a lower resolution (the matching's, or the loss's).

    Two ways to decide whether a low-resolution cell is inside a segment:

    - ``"majority"``: at least half of the cell is (area interpolation, then threshold). It does
      not depend on which of the cell's pixels is picked and keeps segment borders where they
      are: the loss targets.
    - ``"any"``: at least one pixel of the cell is (max pooling). Every segment present keeps
      cells, however thin: a 1-pixel pole covers a quarter of each 4x4 cell and has no majority
      anywhere, and nearest sampling (MaskFormer's) keeps it only when its column is the one
      sampled. The matching targets: a segment without cells would be matched on its class
      cost alone. The price, borders widened by less than a cell, is the same for every
      segment, so it hardly changes which query fits a segment best.

    Both keep the targets binary, which :func:`pairwise_focal_cost` requires.

    Args:
        masks (Tensor): [T, H, W] bool or {0, 1} masks.
        size (tuple[int, int]): (h, w) of the predictions.
        mode (str): "majority" or "any".

    Returns:
        Tensor: [T, h, w] float {0, 1} masks.
    """
    if mode not in ("majority", "any"):
        raise ValueError(f"mode must be 'majority' or 'any', got {mode!r}")
    masks = masks.float()
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size))
    if tuple(masks.shape[-2:]) == tuple(size):
        return masks
    if mode == "any":
        return F.adaptive_max_pool2d(masks[None], size)[0]
    return (F.interpolate(masks[None], size=size, mode="area")[0] >= 0.5).float()


class MaskFormerCriterion(SetCriterion):
    """Loss terms ``class``, ``mask`` (focal) and ``dice``.

    Outputs of a stage: ``{"pred_logits": [B, Q, K + 1], "pred_masks": [B, Q, h, w]}``.
    Targets: per image ``{"labels": LongTensor[T], "masks": BoolTensor[T, H, W]}`` and optionally
    ``"valid": BoolTensor[H, W]`` (False on ignored (255) and padding pixels; absent: all valid),
    at the (padded) input resolution.

    Ignored pixels: by default the mask losses and the matching costs score valid pixels only,
    so a query's mask logits where the label is 255 (a pseudo label's unsure pixels, padding)
    are neither pushed to 0 nor counted in the matching. ``ignored_as_negatives=True`` is
    official MaskFormer's behaviour: every pixel outside a segment, ignored ones included, is a
    negative of every segment.

    Two resolutions, as in MaskFormer: the Hungarian matching compares every query with every
    segment, so it runs at the prediction's resolution (targets max-pooled, so that every
    segment keeps cells); the losses score only the matched pairs, so they run at
    ``H / loss_stride`` (predictions upsampled bilinearly, targets by majority). At stride 1 thin
    segments (poles, fences, signs, a few pixels wide) keep their pixels; at the prediction's
    stride 4 a 2-pixel pole has no majority cell left and the head is never told it exists.

    Args:
        task (str): task name for the loss keys ("semantic", "drivable").
        num_classes (int): K; index K is "no object".
        weights (dict[str, float]): weights of ``class``, ``mask`` and ``dice``.
        no_object_weight (float): cross-entropy weight of the "no object" class; small because
            most queries are unmatched.
        deep_supervision (bool): also score every earlier decoder layer.
        focal_alpha, focal_gamma (float): the focal loss's parameters.
        loss_stride (int): the mask losses' resolution as a divisor of the target masks' size.
        ignored_as_negatives (bool): score ignored pixels as negatives (official MaskFormer)
            instead of leaving them out.
    """

    def __init__(self, task, num_classes, weights, no_object_weight, deep_supervision=True,
                 focal_alpha=0.25, focal_gamma=2.0, loss_stride=1, ignored_as_negatives=False):
        super().__init__(task, weights, deep_supervision)
        if loss_stride < 1:
            raise ValueError(f"loss_stride must be >= 1, got {loss_stride}")
        self.loss_stride = loss_stride
        self.ignored_as_negatives = ignored_as_negatives
        self.num_classes = num_classes
        self.focal = {"alpha": focal_alpha, "gamma": focal_gamma}
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = no_object_weight
        # Not persistent: derived from the config, so checkpoints need not carry it.
        self.register_buffer("class_weight", class_weight, persistent=False)

    def forward(self, stage_outputs, targets):
        """Resize the target masks once for all stages, then score every stage (see base).

        Each target gets ``masks`` at the prediction's resolution (matching) and ``loss_masks``
        at the loss resolution, with their ``valid`` / ``loss_valid`` maps (None: every pixel
        counts). Labels become int64: uint8 labels would index the class probabilities as a
        boolean mask.
        """
        match_size = stage_outputs[-1]["pred_masks"].shape[-2:]
        targets = [self._prepare(t, match_size) for t in targets]
        return super().forward(stage_outputs, targets)

    def _prepare(self, target, match_size):
        height, width = target["masks"].shape[-2:]
        loss_size = (-(-height // self.loss_stride), -(-width // self.loss_stride))
        prepared = {
            "labels": target["labels"].long(),
            "masks": resize_target_masks(target["masks"], match_size, mode="any"),
            "loss_masks": resize_target_masks(target["masks"], loss_size),
            "valid": None,
            "loss_valid": None,
        }
        valid = target.get("valid")
        if not self.ignored_as_negatives and valid is not None and not valid.all():
            # A matching cell counts when any of its pixels does (like its targets); a loss
            # cell when most of them do.
            valid = valid[None]
            prepared["valid"] = resize_target_masks(valid, match_size, mode="any")[0].bool()
            prepared["loss_valid"] = resize_target_masks(valid, loss_size)[0]
        return prepared

    def pairwise_costs(self, outputs, targets):
        """Per image ``{"class": -p(target class), "mask": focal, "dice": dice}``, each [Q, T];
        the mask costs over the image's valid cells only."""
        probs = outputs["pred_logits"].softmax(-1)
        costs = []
        for prob, masks, target in zip(probs, outputs["pred_masks"], targets):
            target_masks = target["masks"]
            if target.get("valid") is not None:  # [Q, h, w] -> [Q, P] valid cells
                masks, target_masks = masks[:, target["valid"]], target_masks[:, target["valid"]]
            costs.append({
                "class": -prob[:, target["labels"]],
                "mask": pairwise_focal_cost(masks, target_masks, **self.focal),
                "dice": pairwise_dice_cost(masks, target_masks),
            })
        return costs

    def local_counts(self, outputs, targets):
        """Adds ``class_weight_sum``: the cross-entropy weights of this batch's queries.

        Every image has min(Q, T) matched queries, of weight 1 (each real class's), and the
        others are "no object". The least value only guards 0 / 0 (no target anywhere and a
        "no object" weight of 0).
        """
        counts = super().local_counts(outputs, targets)
        num_queries = outputs["pred_logits"].shape[1] if targets else 0
        matched = [min(num_queries, len(t["labels"])) for t in targets]
        no_object_weight = self.class_weight[-1].item()
        weight_sum = sum(m + (num_queries - m) * no_object_weight for m in matched)
        counts["class_weight_sum"] = (float(weight_sum), 1e-6)
        return counts

    def loss_terms(self, outputs, targets, matches, num_targets, class_weight_sum):
        """``class``: cross-entropy summed over all queries (unmatched -> no object), each
        weighted by its target class's weight, divided by ``class_weight_sum``: in one process
        the weighted mean; ``mask``, ``dice``: summed over matched pairs, divided by
        ``num_targets``. Both normalizers are averages over processes (see
        :meth:`SetCriterion.local_counts`)."""
        pred_masks = torch.cat([m[pred] for m, (pred, _) in zip(outputs["pred_masks"], matches)])
        target_masks = torch.cat([t["loss_masks"][tgt] for t, (_, tgt) in zip(targets, matches)])
        valid = self._pair_valid(targets, matches)
        if pred_masks.shape[-2:] != target_masks.shape[-2:]:
            # Also with no matched pair: the empty result keeps the loss in the graph.
            pred_masks = F.interpolate(
                pred_masks[:, None], size=target_masks.shape[-2:], mode="bilinear",
                align_corners=False,
            )[:, 0]
        focal = focal_mask_loss(pred_masks, target_masks, **self.focal, valid=valid)
        return {
            "class": self.class_loss(outputs["pred_logits"], targets, matches, class_weight_sum),
            "mask": focal.sum() / num_targets,
            "dice": dice_loss(pred_masks, target_masks, valid=valid).sum() / num_targets,
        }

    @staticmethod
    def _pair_valid(targets, matches):
        """[N, H', W'] loss-resolution valid maps of the matched pairs, or None when every
        pixel of every image counts."""
        if all(t["loss_valid"] is None for t in targets):
            return None
        maps = [t["loss_masks"].new_ones(t["loss_masks"].shape[-2:]) if t["loss_valid"] is None
                else t["loss_valid"] for t in targets]
        return torch.cat([m[None].expand(len(tgt), -1, -1) for m, (_, tgt) in zip(maps, matches)])

    def class_loss(self, logits, targets, matches, weight_sum):
        """Weighted cross-entropy of [B, Q, K + 1] logits summed over the queries, divided by
        ``weight_sum``; unmatched queries' target is K (no object)."""
        target_classes = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device
        )
        for image_classes, target, (pred, tgt) in zip(target_classes, targets, matches):
            image_classes[pred] = target["labels"][tgt]
        loss = F.cross_entropy(
            logits.transpose(1, 2).float(), target_classes, self.class_weight, reduction="sum"
        )
        return loss / weight_sum
