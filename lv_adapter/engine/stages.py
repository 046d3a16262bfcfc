"""Pretrain-adapt-finetune: the training stage as a function of the iteration, and its hook.

One run, two stages (the paper's "adapt stage"):

* **adapt**, iterations ``[0, SOLVER.ADAPT_ITERS)``: the pre-trained ResNet
  (``backbone.bottom_up``) is left untouched. Its parameters get no gradients and its batch
  norms use (and keep) their running statistics, while the FPN, the adapter and the heads learn.
* **finetune**, from iteration ``SOLVER.ADAPT_ITERS`` on: everything learns, the ResNet at
  ``BASE_LR * SOLVER.BACKBONE_MULTIPLIER`` times the schedule's factor at that iteration.

At the switch the ResNet joins with fresh optimizer state at whatever learning rate the schedule
has reached (0.69 of the peak after half of a poly schedule). The paper describes no warm-up
there, so by default there is none; ``SOLVER.BACKBONE_WARMUP_ITERS = W`` ramps the ResNet's
learning rate linearly over the first W finetune iterations (factor ``(k + 1) / (W + 1)`` at the
k-th), for pre-trained weights that a first full-size AdamW step (of size ~lr on every weight)
would disturb.

``SOLVER.ADAPT_ITERS = 0`` is the conventional pretrain-finetune run (no hook at all).

Because the stage depends on the iteration only, a run resumed on either side of the switch
is in the right stage from its first step.
"""
import logging

from detectron2.engine import HookBase
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["ADAPT", "FINETUNE", "StageSwitch", "backbone_lr_factor", "build_stage_hooks",
           "set_stage", "stage_at", "stage_ddp_options"]

ADAPT, FINETUNE = "adapt", "finetune"
# The part of the model that the adapt stage freezes.
FROZEN_MODULE = "backbone.bottom_up"

logger = logging.getLogger(__name__)


def stage_at(iteration, adapt_iters):
    """The stage that training iteration ``iteration`` (0-based) belongs to."""
    return ADAPT if iteration < adapt_iters else FINETUNE


def _adapt_iters(cfg):
    adapt_iters = cfg.SOLVER.ADAPT_ITERS
    if not isinstance(adapt_iters, int) or adapt_iters < 0:
        raise ValueError(f"SOLVER.ADAPT_ITERS must be an integer >= 0, got {adapt_iters!r}")
    return adapt_iters


def _warmup_iters(cfg):
    warmup = cfg.SOLVER.BACKBONE_WARMUP_ITERS
    if not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"SOLVER.BACKBONE_WARMUP_ITERS must be an integer >= 0, got {warmup!r}")
    return warmup


def backbone_lr_factor(iteration, adapt_iters, warmup_iters):
    """The factor on the ResNet's scheduled learning rate at ``iteration``: 1, but
    ``(k + 1) / (warmup_iters + 1)`` at the k-th iteration after the switch while k <
    ``warmup_iters``. The adapt stage has no ResNet step to scale."""
    k = iteration - adapt_iters
    return (k + 1) / (warmup_iters + 1) if 0 <= k < warmup_iters else 1.0


def stage_ddp_options(cfg):
    """Extra DistributedDataParallel arguments that the stages of ``cfg`` need.

    In the adapt stage the ResNet's parameters take no part in the loss; DDP has to search the
    graph for such parameters, or it waits for their gradients forever. The search costs a
    graph traversal per step, so it is switched on only when there is an adapt stage.
    """
    return {"find_unused_parameters": True} if _adapt_iters(cfg) > 0 else {}


def build_stage_hooks(cfg):
    """``[StageSwitch]`` when ``cfg`` has an adapt stage, else ``[]`` (pretrain-finetune)."""
    adapt_iters, warmup_iters = _adapt_iters(cfg), _warmup_iters(cfg)
    if adapt_iters == 0:
        return []
    if adapt_iters >= cfg.SOLVER.MAX_ITER:
        logger.warning(
            f"SOLVER.ADAPT_ITERS ({adapt_iters}) >= SOLVER.MAX_ITER ({cfg.SOLVER.MAX_ITER}): "
            "this run never reaches the finetune stage (a resumed run with a larger MAX_ITER does)"
        )
    return [StageSwitch(adapt_iters, warmup_iters)]


def _unwrap(model):
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def set_stage(module, params, stage):
    """Put ``module`` (the ResNet) and its trainable ``params`` into ``stage``.

    Adapt: ``requires_grad`` off and gradients dropped, so the optimizer skips the parameters
    altogether (a zero gradient would not do: AdamW's decoupled weight decay and momentum would
    still move them); batch norms in eval mode, so they neither use nor update batch statistics.
    Finetune: the parameters learn again and the batch norms follow ``module.training``.
    """
    frozen = stage == ADAPT
    for param in params:
        param.requires_grad_(not frozen)
        if frozen:
            param.grad = None
    for norm in module.modules():
        if isinstance(norm, _BatchNorm):
            norm.train(module.training and not frozen)


class StageSwitch(HookBase):
    """Applies the stage of each iteration before its step, and logs every change of stage.

    It re-applies the stage at every step, not only at the switch: detectron2's evaluation
    (``inference_context``) puts the whole model back into train mode when it finishes, which
    would let the ResNet's batch norms learn statistics during the adapt stage.
    """

    def __init__(self, adapt_iters, warmup_iters=0):
        """
        Args:
            adapt_iters (int): length of the adapt stage, in iterations (> 0).
            warmup_iters (int): the ResNet's learning-rate warm-up after the switch (see
                :func:`backbone_lr_factor`).
        """
        self.adapt_iters = adapt_iters
        self.warmup_iters = warmup_iters
        self._stage = None

    def before_train(self):
        model = _unwrap(self.trainer.model)
        try:
            self._module = model.get_submodule(FROZEN_MODULE)
        except AttributeError:
            raise ValueError(
                f"SOLVER.ADAPT_ITERS > 0 freezes '{FROZEN_MODULE}', which "
                f"{type(model).__name__} does not have"
            ) from None
        self._params = self._trainable_params()
        ids = {id(p) for p in self._params}
        self._groups = [g for g in self.trainer.optimizer.param_groups
                        if any(id(p) in ids for p in g["params"])]
        start = self.trainer.start_iter
        logger.info(
            f"Stages: adapt for iterations [0, {self.adapt_iters}) with the "
            f"{len(self._params)} parameter tensors of {FROZEN_MODULE} and its batch-norm "
            f"statistics frozen, then finetune; starting at iteration {start} in the "
            f"{stage_at(start, self.adapt_iters)} stage"
        )

    def _trainable_params(self):
        """The ResNet parameters that the optimizer updates (those frozen by FREEZE_AT are
        not, and stay frozen in both stages)."""
        in_optimizer = {id(p) for group in self.trainer.optimizer.param_groups
                        for p in group["params"]}
        params = [p for p in self._module.parameters() if id(p) in in_optimizer]
        if not params:
            raise ValueError(
                f"the optimizer holds no parameter of {FROZEN_MODULE}: the finetune stage "
                "would not train it (was it frozen before the optimizer was built?)"
            )
        return params

    def before_step(self):
        stage = stage_at(self.trainer.iter, self.adapt_iters)
        if self._stage is not None and stage != self._stage:
            logger.info(
                f"Iteration {self.trainer.iter}: the {self._stage} stage ends, the {stage} "
                f"stage begins ({FROZEN_MODULE} learns from now on)"
            )
        self._stage = stage
        set_stage(self._module, self._params, stage)
        self.trainer.storage.put_scalar("adapt_stage", float(stage == ADAPT), smoothing_hint=False)
        factor = backbone_lr_factor(self.trainer.iter, self.adapt_iters, self.warmup_iters)
        if factor != 1.0:
            # The scheduler sets every group's lr afresh after each step (base lr times its
            # multiplier), so this scales this iteration's step only.
            for group in self._groups:
                group["lr"] *= factor
            self.trainer.storage.put_scalar("backbone_lr_factor", factor, smoothing_hint=False)
