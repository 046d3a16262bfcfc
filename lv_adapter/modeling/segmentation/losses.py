"""MaskFormer's binary mask losses: sigmoid focal and dice.

Each loss comes twice: per pair (prediction i scored against target i, for the matched pairs)
and pairwise (every prediction against every target, the matching cost). Masks are given as
logits [N, ...] and binary targets [N, ...]; everything after the first dim is flattened to
pixels, so the same functions serve [N, H, W] maps and [N, P] pixel lists. The per-pair losses
take an optional ``valid`` map of the same shape: pixels where it is 0 (ignored labels, padding)
add nothing to either loss; the pairwise costs ignore pixels by being given only the valid ones
(a pixel list).
"""
import torch
from fvcore.nn import sigmoid_focal_loss


def _pixels(logits, targets):
    """Flatten to [N, P] logits and [M, P] float targets."""
    logits = logits.flatten(1).float()
    return logits, targets.flatten(1).to(logits.dtype)


def _dice(intersection, prob_sum, target_sum):
    """Dice loss 1 - (2 |p t| + 1) / (|p| + |t| + 1) from its sums (any broadcastable shapes).

    The +1 keeps an empty target with an empty prediction at loss 0 instead of 0/0.
    """
    return 1 - (2 * intersection + 1) / (prob_sum + target_sum + 1)


def dice_loss(logits, targets, valid=None):
    """Dice loss of each prediction against its own target.

    Args:
        logits (Tensor): [N, ...] mask logits.
        targets (Tensor): [N, ...] binary masks (bool or float), same shape.
        valid (Tensor or None): [N, ...] {0, 1} pixels to score (None: all).

    Returns:
        Tensor: [N] loss per pair.
    """
    logits, targets = _pixels(logits, targets)
    probs = logits.sigmoid()
    if valid is not None:
        valid = valid.flatten(1).to(probs.dtype)
        probs, targets = probs * valid, targets * valid
    return _dice((probs * targets).sum(1), probs.sum(1), targets.sum(1))


def pairwise_dice_cost(logits, targets):
    """Dice loss of every prediction against every target.

    Args:
        logits (Tensor): [Q, ...] mask logits.
        targets (Tensor): [T, ...] binary masks with the same pixels.

    Returns:
        Tensor: [Q, T]; entry (q, t) equals ``dice_loss(logits[q:q+1], targets[t:t+1])``.
    """
    logits, targets = _pixels(logits, targets)
    probs = logits.sigmoid()
    return _dice(probs @ targets.T, probs.sum(1)[:, None], targets.sum(1)[None, :])


def focal_mask_loss(logits, targets, alpha=0.25, gamma=2.0, valid=None):
    """Sigmoid focal loss of each prediction against its own target, averaged over pixels.

    Args:
        logits (Tensor): [N, ...] mask logits.
        targets (Tensor): [N, ...] binary masks, same shape.
        valid (Tensor or None): [N, ...] {0, 1} pixels to score and average over (None: all;
            a pair without valid pixels costs 0).

    Returns:
        Tensor: [N] loss per pair.
    """
    logits, targets = _pixels(logits, targets)
    loss = sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma)
    if valid is None:
        return loss.mean(1)
    valid = valid.flatten(1).to(loss.dtype)
    return (loss * valid).sum(1) / valid.sum(1).clamp(min=1)


def pairwise_focal_cost(logits, targets, alpha=0.25, gamma=2.0):
    """Pixel-averaged sigmoid focal loss of every prediction against every binary target.

    With a binary target a pixel costs focal(x, 1) where the target is 1 and focal(x, 0) where it
    is 0, so the [Q, T] matrix is two matrix products instead of Q * T full-size losses.

    Args:
        logits (Tensor): [Q, ...] mask logits.
        targets (Tensor): [T, ...] binary masks with the same pixels (soft targets would break the
            decomposition above).

    Returns:
        Tensor: [Q, T]; entry (q, t) equals ``focal_mask_loss(logits[q:q+1], targets[t:t+1])``.
    """
    logits, targets = _pixels(logits, targets)
    positive = sigmoid_focal_loss(logits, torch.ones_like(logits), alpha=alpha, gamma=gamma)
    negative = sigmoid_focal_loss(logits, torch.zeros_like(logits), alpha=alpha, gamma=gamma)
    return (positive @ targets.T + negative @ (1 - targets).T) / logits.shape[1]
