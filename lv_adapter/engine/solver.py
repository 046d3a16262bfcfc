"""Optimizer and learning-rate schedule of the multi-task model.

AdamW with a learning-rate multiplier on the ResNet (the FPN and heads learn at full rate), no
weight decay on normalization layers and embeddings, optional full-model gradient clipping, and
detectron2's schedules plus a warm-up + polynomial one.
"""
import itertools

import torch
from detectron2.layers import FrozenBatchNorm2d, NaiveSyncBatchNorm
from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver.build import maybe_add_gradient_clipping
from detectron2.solver.lr_scheduler import LRMultiplier, WarmupParamScheduler
from fvcore.common.param_scheduler import PolynomialDecayParamScheduler
from torch import nn

NORM_TYPES = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm, nn.LayerNorm,
    nn.LocalResponseNorm, FrozenBatchNorm2d, NaiveSyncBatchNorm,
)
OPTIMIZERS = {"ADAMW": torch.optim.AdamW, "SGD": torch.optim.SGD}


def param_groups(model, base_lr, weight_decay, weight_decay_norm, weight_decay_embed,
                 backbone_multiplier):
    """One group per trainable parameter, with its own lr and weight decay.

    The ResNet (``backbone.bottom_up``) learns at ``base_lr * backbone_multiplier``; parameters
    of normalization layers and embeddings get their own weight decay (0 by default).
    """
    groups, seen = [], set()
    for module_name, module in model.named_modules():
        for param in module.parameters(recurse=False):
            if not param.requires_grad or param in seen:
                continue
            seen.add(param)
            in_resnet = module_name.startswith("backbone.bottom_up")
            decay = weight_decay
            if isinstance(module, NORM_TYPES):
                decay = weight_decay_norm
            elif isinstance(module, nn.Embedding):
                decay = weight_decay_embed
            lr = base_lr * (backbone_multiplier if in_resnet else 1.0)
            groups.append({"params": [param], "lr": lr, "weight_decay": decay})
    return groups


def with_full_model_clipping(optimizer_cls, max_norm):
    """Subclass ``optimizer_cls`` so that ``step`` first clips the gradient norm of all
    parameters together (Sparse R-CNN's "full model" clipping), not tensor by tensor."""

    class FullModelClipping(optimizer_cls):
        def step(self, closure=None):
            params = itertools.chain(*(group["params"] for group in self.param_groups))
            torch.nn.utils.clip_grad_norm_(params, max_norm)
            return super().step(closure)

    FullModelClipping.__name__ = f"{optimizer_cls.__name__}WithFullModelClipping"
    return FullModelClipping


def build_optimizer(cfg, model):
    solver = cfg.SOLVER
    if solver.OPTIMIZER not in OPTIMIZERS:
        raise ValueError(
            f"SOLVER.OPTIMIZER must be one of {list(OPTIMIZERS)}, got {solver.OPTIMIZER!r}"
        )
    groups = param_groups(
        model, solver.BASE_LR, solver.WEIGHT_DECAY, solver.WEIGHT_DECAY_NORM,
        solver.WEIGHT_DECAY_EMBED, solver.BACKBONE_MULTIPLIER,
    )
    optimizer_cls = OPTIMIZERS[solver.OPTIMIZER]
    clip = solver.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE == "full_model":
        optimizer_cls = with_full_model_clipping(optimizer_cls, clip.CLIP_VALUE)
    else:
        optimizer_cls = maybe_add_gradient_clipping(cfg, optimizer_cls)
    kwargs = {"momentum": solver.MOMENTUM} if optimizer_cls is torch.optim.SGD else {}
    return optimizer_cls(groups, solver.BASE_LR, **kwargs)


def build_lr_scheduler(cfg, optimizer):
    """detectron2's schedules, plus "WarmupPolyLR": lr * (1 - iter / max_iter) ** POLY_LR_POWER."""
    solver = cfg.SOLVER
    if solver.LR_SCHEDULER_NAME != "WarmupPolyLR":
        return d2_build_lr_scheduler(cfg, optimizer)
    schedule = WarmupParamScheduler(
        PolynomialDecayParamScheduler(1.0, solver.POLY_LR_POWER),
        solver.WARMUP_FACTOR,
        min(solver.WARMUP_ITERS / solver.MAX_ITER, 1.0),
        solver.WARMUP_METHOD,
    )
    return LRMultiplier(optimizer, multiplier=schedule, max_iter=solver.MAX_ITER)
