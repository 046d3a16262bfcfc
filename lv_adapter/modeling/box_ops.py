"""Box format conversions and generalized IoU (Rezatofighi et al., CVPR 2019).

All functions work on the last dimension (4 coordinates) and broadcast over the others.
"""
import torch

# Areas below this count as empty: keeps IoU and GIoU finite (and differentiable) for
# zero-width or zero-height boxes.
_EPS = 1e-7


def box_cxcywh_to_xyxy(boxes):
    """[..., 4] (center x, center y, width, height) -> [..., 4] (x0, y0, x1, y1)."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xyxy_to_cxcywh(boxes):
    """[..., 4] (x0, y0, x1, y1) -> [..., 4] (center x, center y, width, height)."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def _area(boxes):
    """[..., 4] xyxy -> [...]; boxes with x1 < x0 or y1 < y0 have area 0."""
    wh = (boxes[..., 2:] - boxes[..., :2]).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def generalized_box_iou(boxes1, boxes2):
    """Generalized IoU of corresponding boxes: IoU - (enclosing area - union) / enclosing area.

    Args:
        boxes1, boxes2 (Tensor): [..., 4] XYXY boxes, broadcastable against each other.

    Returns:
        Tensor: [...] values in [-1, 1]; 1 for identical non-empty boxes, 0 for identical
        empty ones, never NaN.
    """
    top_left = torch.max(boxes1[..., :2], boxes2[..., :2])
    bottom_right = torch.min(boxes1[..., 2:], boxes2[..., 2:])
    inter = _area(torch.cat([top_left, bottom_right], dim=-1))
    union = _area(boxes1) + _area(boxes2) - inter
    iou = inter / union.clamp(min=_EPS)
    enclosing = torch.cat(
        [torch.min(boxes1[..., :2], boxes2[..., :2]), torch.max(boxes1[..., 2:], boxes2[..., 2:])],
        dim=-1,
    )
    enclosing_area = _area(enclosing)
    return iou - (enclosing_area - union) / enclosing_area.clamp(min=_EPS)


def pairwise_generalized_box_iou(boxes1, boxes2):
    """Generalized IoU of every pair: boxes1 [N, 4], boxes2 [M, 4] (XYXY) -> [N, M]."""
    return generalized_box_iou(boxes1[:, None, :], boxes2[None, :, :])
