"""MaskFormer's semantic inference: per-class scores from (class, mask) pairs."""
import torch
from torch.nn import functional as F


def semantic_inference(pred_logits, pred_masks, output_size):
    """Marginalize the queries: score(c, pixel) = sum_q p_q(c) * sigmoid(mask_q(pixel)).

    "No object" probability is dropped, so a query predicting no object contributes nothing.
    Scores are >= 0 but not normalized: each query adds at most 1 over all classes, so a pixel's
    class scores sum to at most Q. The argmax over classes is the semantic prediction.

    Args:
        pred_logits (Tensor): [B, Q, K + 1] class logits.
        pred_masks (Tensor): [B, Q, h, w] mask logits.
        output_size (tuple[int, int]): (H, W) to upsample to, e.g. the padded input size.

    Returns:
        Tensor: [B, K, H, W] per-class scores.
    """
    probs = pred_logits.softmax(-1)[..., :-1]
    semseg = torch.einsum("bqc,bqhw->bchw", probs, pred_masks.sigmoid())
    # The sum over queries and bilinear interpolation are both linear, so they commute:
    # upsampling the K score maps equals upsampling the Q mask probabilities, at K/Q the cost.
    return F.interpolate(semseg, size=output_size, mode="bilinear", align_corners=False)
