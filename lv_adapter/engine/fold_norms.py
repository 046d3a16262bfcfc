"""Folding constant normalization layers into the convolutions before them, for inference.

A frozen (or evaluation-mode) batch norm is a per-channel affine map ``y = x * s + t``; after a
convolution it can be merged into the convolution's weights and bias (``W' = W * s``,
``b' = b * s + t``), which removes two passes over every feature map. For ResNet-50 + FPN on a
1280x720 image that is a sizable share of the CPU time (see BENCHMARKS.md). The model computes
the same function afterwards (up to float rounding) but can no longer load checkpoints, so this
is for inference only.
"""
import torch
from detectron2.layers import Conv2d, FrozenBatchNorm2d
from torch import nn

__all__ = ["fold_frozen_norms"]


def _is_constant(norm):
    """A frozen batch norm, or a batch norm in evaluation mode using its running statistics."""
    if isinstance(norm, FrozenBatchNorm2d):
        return True
    return isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats


def _affine_of(norm):
    """(scale, shift) of a constant norm layer, or None if it is not constant."""
    if not _is_constant(norm):
        return None
    scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
    return scale, norm.bias - norm.running_mean * scale


@torch.no_grad()
def fold_frozen_norms(model):
    """Merge every constant norm of a detectron2 ``Conv2d`` into its weights, in place.

    Args:
        model (nn.Module): in evaluation mode (batch norms in training mode are left alone).

    Returns:
        int: the number of convolutions folded.
    """
    folded = 0
    for module in model.modules():
        if not isinstance(module, Conv2d) or module.norm is None:
            continue
        affine = _affine_of(module.norm)
        if affine is None:
            continue
        scale, shift = affine
        module.weight.mul_(scale.view(-1, 1, 1, 1).to(module.weight.dtype))
        bias = shift if module.bias is None else module.bias * scale + shift
        module.bias = nn.Parameter(bias.to(module.weight.dtype), requires_grad=False)
        module.norm = None
        folded += 1
    return folded
