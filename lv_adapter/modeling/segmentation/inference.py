"""MaskFormer's semantic inference: per-class scores from (class, mask) pairs."""
import torch
from torch.nn import functional as F


def _upsample(maps, size):
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)


def _upsample_masks(probs, mask_logits, output_size):
    """MaskFormer's order: upsample the Q mask logits, then sigmoid, then combine."""
    masks = _upsample(mask_logits, output_size).sigmoid()
    return torch.einsum("bqc,bqhw->bchw", probs, masks)


def _upsample_scores(probs, mask_logits, output_size):
    """Combine at the masks' resolution, then upsample the K score maps.

    Upsampling and the sum over queries are linear, so this equals upsampling the Q mask
    *probabilities*; the sigmoid does not commute with the interpolation, so it differs from
    upsampling the mask *logits* (MaskFormer's order) where a mask crosses its 0.5 level. The
    full-resolution work is K maps instead of Q, with no sigmoid there.
    """
    return _upsample(torch.einsum("bqc,bqhw->bchw", probs, mask_logits.sigmoid()), output_size)


# INFERENCE_UPSAMPLE config value -> what is upsampled to the output size.
UPSAMPLE_ORDERS = {"masks": _upsample_masks, "scores": _upsample_scores}


def semantic_inference(pred_logits, pred_masks, output_size, upsample="masks"):
    """Marginalize the queries: score(c, pixel) = sum_q p_q(c) * sigmoid(mask_q(pixel)).

    "No object" probability is dropped, so a query predicting no object contributes nothing.
    Scores are >= 0 but not normalized: each query adds at most 1 over all classes, so a pixel's
    class scores sum to at most Q. The argmax over classes is the semantic prediction.

    Args:
        pred_logits (Tensor): [B, Q, K + 1] class logits.
        pred_masks (Tensor): [B, Q, h, w] mask logits.
        output_size (tuple[int, int]): (H, W) to upsample to, e.g. the padded input size.
        upsample (str): "masks": upsample the mask logits bilinearly, then apply the sigmoid
            (MaskFormer's order); "scores": sigmoid at (h, w), upsample the K class scores
            (cheaper when K < Q; not the same result, see :func:`_upsample_scores`).

    Returns:
        Tensor: [B, K, H, W] per-class scores.
    """
    if upsample not in UPSAMPLE_ORDERS:
        raise ValueError(f"upsample must be one of {sorted(UPSAMPLE_ORDERS)}, got {upsample!r}")
    probs = pred_logits.softmax(-1)[..., :-1]
    return UPSAMPLE_ORDERS[upsample](probs, pred_masks, output_size)
