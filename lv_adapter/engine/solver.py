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
    of normalization layers and embeddings get their own weight decay (0 by default). A group
    of a task head's parameter (``heads.<task>.``) names its ``task`` (None elsewhere).
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
            groups.append({"params": [param], "lr": lr, "weight_decay": decay,
                           "task": _head_task(module_name)})
    return groups


def _head_task(module_name):
    parts = module_name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "heads" else None


def with_unlabeled_heads_skipped(optimizer_cls, model):
    """Subclass ``optimizer_cls`` so that ``step`` leaves alone the heads of the tasks that no
    image of the last global batch was labeled for (``model.unlabeled_tasks``).

    Their gradients are zero, not absent (the graph touches every head, see
    ``meta_arch/multitask.py``), and AdamW or SGD with momentum or weight decay would still
    move them: under round-robin a head would drift on every other task's iterations. Dropping
    the gradients (None) makes the step skip those parameters, their optimizer state included;
    every process agrees on the tasks, so the replicas stay equal.
    """

    class UnlabeledHeadsSkipped(optimizer_cls):
        def step(self, closure=None):
            skipped = set(getattr(model, "unlabeled_tasks", ()))
            for group in self.param_groups:
                if group.get("task") in skipped:
                    for param in group["params"]:
                        param.grad = None
            return super().step(closure)

    UnlabeledHeadsSkipped.__name__ = f"{optimizer_cls.__name__}SkippingUnlabeledHeads"
    return UnlabeledHeadsSkipped


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
    optimizer_cls = with_unlabeled_heads_skipped(optimizer_cls, model)
    # issubclass: with gradient clipping the class is a subclass of SGD, and still needs it.
    kwargs = {"momentum": solver.MOMENTUM} if issubclass(optimizer_cls, torch.optim.SGD) else {}
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
