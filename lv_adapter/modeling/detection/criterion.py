"""Set loss of the Sparse R-CNN head: focal classification, L1 and GIoU on matched boxes.

The same three terms, with the same weights, are the matching costs (Sparse R-CNN, Sun et al.
CVPR 2021, following DETR): each prediction is matched to at most one target by the shared
Hungarian matcher, unmatched predictions learn "no object" (all class scores pushed down).
"""
import torch
from fvcore.nn import sigmoid_focal_loss
from torch.nn import functional as F

from lv_adapter.modeling.box_ops import generalized_box_iou, pairwise_generalized_box_iou
from lv_adapter.modeling.matching import split_batched_cost
from lv_adapter.modeling.set_criterion import SetCriterion


class SparseRCNNCriterion(SetCriterion):
    """Loss keys: ``loss_detection_{class,bbox,giou}`` (+ ``_<stage>`` for earlier stages).

    Outputs (per stage): ``pred_logits`` [B, Q, K] class logits (sigmoid, no background class)
    and ``pred_boxes`` [B, Q, 4] XYXY absolute pixels.
    Targets (per image): ``labels`` LongTensor[T], ``boxes`` [T, 4] XYXY absolute pixels and
    ``image_scale`` [4] = (w, h, w, h) of the image, to normalize boxes for the L1 term.

    Args:
        class_weight, l1_weight, giou_weight (float): weights of the terms, in cost and loss.
        focal_alpha, focal_gamma (float): focal loss parameters.
        deep_supervision (bool): also score every earlier stage.
    """

    def __init__(
        self,
        class_weight=2.0,
        l1_weight=5.0,
        giou_weight=2.0,
        focal_alpha=0.25,
        focal_gamma=2.0,
        deep_supervision=True,
    ):
        weights = {"class": class_weight, "bbox": l1_weight, "giou": giou_weight}
        super().__init__("detection", weights, deep_supervision)
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma

    def pairwise_costs(self, outputs, targets):
        """Per image ``{"class", "bbox", "giou": [Q, T_i]}``, computed for the whole batch."""
        logits = outputs["pred_logits"]  # [B, Q, K]
        batch, num_queries = logits.shape[:2]
        pred_boxes = _normalized(outputs["pred_boxes"], targets).flatten(0, 1)  # [B*Q, 4]
        labels = torch.cat([t["labels"] for t in targets])  # [sum T]
        boxes = torch.cat([t["boxes"] / t["image_scale"] for t in targets])  # [sum T, 4]
        costs = {
            "class": self._class_cost(logits)[..., labels],
            "bbox": torch.cdist(pred_boxes, boxes, p=1).view(batch, num_queries, -1),
            "giou": -pairwise_generalized_box_iou(pred_boxes, boxes).view(batch, num_queries, -1),
        }
        num_targets = [len(t["labels"]) for t in targets]
        per_term = {term: split_batched_cost(cost, num_targets) for term, cost in costs.items()}
        return [{term: blocks[i] for term, blocks in per_term.items()} for i in range(batch)]

    def _class_cost(self, logits):
        """Focal-style cost of predicting each class, [B, Q, K]: the focal loss of calling it
        positive minus that of calling it negative, so confident correct predictions cost least.
        """
        prob = logits.sigmoid()
        alpha, gamma = self.focal_alpha, self.focal_gamma
        # -log(p) = softplus(-x) and -log(1 - p) = softplus(x), without log(0).
        positive = alpha * (1 - prob) ** gamma * F.softplus(-logits)
        negative = (1 - alpha) * prob**gamma * F.softplus(logits)
        return positive - negative

    def loss_terms(self, outputs, targets, matches, num_targets):
        """``{"class", "bbox", "giou": scalar}``, each summed and divided by ``num_targets``."""
        logits = outputs["pred_logits"]
        batch_idx, pred_idx = _matched_prediction_indices(matches)
        class_target = torch.zeros_like(logits)
        labels = torch.cat([t["labels"][tgt] for t, (_, tgt) in zip(targets, matches)])
        class_target[batch_idx, pred_idx, labels] = 1.0
        class_loss = sigmoid_focal_loss(
            logits, class_target, self.focal_alpha, self.focal_gamma, reduction="sum"
        )
        pred_boxes = _normalized(outputs["pred_boxes"], targets)[batch_idx, pred_idx]  # [M, 4]
        boxes = torch.cat(
            [t["boxes"][tgt] / t["image_scale"] for t, (_, tgt) in zip(targets, matches)]
        )
        return {
            "class": class_loss / num_targets,
            "bbox": F.l1_loss(pred_boxes, boxes, reduction="sum") / num_targets,
            "giou": (1 - generalized_box_iou(pred_boxes, boxes)).sum() / num_targets,
        }


def _normalized(boxes, targets):
    """[B, Q, 4] absolute boxes -> divided by each image's (w, h, w, h)."""
    return boxes / torch.stack([t["image_scale"] for t in targets])[:, None, :]


def _matched_prediction_indices(matches):
    """(batch index, prediction index) of every matched prediction, both LongTensor[M]."""
    batch_idx = torch.cat([torch.full_like(pred, i) for i, (pred, _) in enumerate(matches)])
    pred_idx = torch.cat([pred for pred, _ in matches])
    return batch_idx, pred_idx
