"""What every text encoder of the LV-Adapter shares: the registry and the frozen-tower handling.

A text encoder turns prompts, each made of optional learned context vectors followed by the tokens
of a text, into L2-normalised features. Its pre-trained tower is frozen yet differentiable with
respect to the context vectors, and it is no part of the model's checkpoint: the tower's weights
come from the configured weights every time the model is built.
"""
from typing import NamedTuple, Optional

import torch
from detectron2.utils.registry import Registry
from torch import nn

from lv_adapter.utils.registry import lookup

TEXT_ENCODER_REGISTRY = Registry("TEXT_ENCODER")
TEXT_ENCODER_REGISTRY.__doc__ = """
Frozen text encoders of the LV-Adapter, named by ``MODEL.ADAPTER.TEXT_ENCODER.NAME`` and called as
``cls(cfg)``. See :class:`FrozenTextEncoder` for the interface.
"""


class FrozenTextEncoder(nn.Module):
    """Base class: a frozen pre-trained tower kept out of the module registry.

    The tower is not a registered submodule, so it appears in neither ``state_dict()`` nor
    ``parameters()`` (no optimizer or DDP bucket sees it, no checkpoint holds it, loading a
    checkpoint misses nothing) and ``train()`` leaves it in eval mode (no dropout). ``_apply`` is
    overridden so that ``.to(device)``, ``.half()``, ``.cuda()`` still move and cast it.

    Subclasses call :meth:`_set_tower` once and implement:

    * ``width`` (int): the dimension of token embeddings, hence of context vectors;
    * ``output_dim`` (int): the dimension D of the features;
    * ``tokenize(text) -> list[int]``: token ids of ``text`` without start/end tokens;
    * ``embed_tokens(ids: LongTensor[...]) -> Tensor[..., width]``: the frozen word embeddings;
    * ``encode_groups(groups) -> list[Tensor[C_g, D]]``, L2-normalised: every group of prompts
      in one pass through the tower. A group is ``(token_ids, context)`` and stands for C_g
      prompts ``[start] [context] [tokens of prompt c] [end]``: ``token_ids`` is a list of C_g
      id lists (from ``tokenize``), ``context`` is None, ``[N, width]`` (shared by the group's
      prompts) or ``[C_g, N, width]`` (one context per prompt). Groups may differ in N.

    ``forward(token_ids, context)`` encodes one group.
    """

    # Layouts (index tensors, masks) of this many group structures are kept per encoder.
    MAX_LAYOUTS = 8

    def __init__(self):
        super().__init__()
        self._layouts = {}  # (device, group structure) -> layout

    def _set_tower(self, tower):
        tower.eval()
        tower.requires_grad_(False)
        # Stored in __dict__ directly: nn.Module.__setattr__ would register it as a submodule.
        self.__dict__["_tower"] = tower

    @property
    def tower(self):
        """The frozen pre-trained module (read-only use)."""
        return self.__dict__["_tower"]

    def forward(self, token_ids, context=None):
        """Encode one group of C prompts (see :meth:`encode_groups`) -> [C, D], L2-normalised."""
        return self.encode_groups([(token_ids, context)])[0]

    def _layout(self, groups, like):
        """The layout that ``self._build_layout(groups, like)`` gives (on ``like``'s device, masks
        in its dtype), cached.

        The layout (index tensors, attention masks) depends only on the token ids and the context
        shapes, which stay the same at every training step: building it once spares the
        host-to-device copies that would otherwise stall every step.
        """
        key = (str(like.device), like.dtype, tuple(group.key() for group in groups))
        if key not in self._layouts:
            if len(self._layouts) >= self.MAX_LAYOUTS:
                self._layouts.clear()
            self._layouts[key] = self._build_layout(groups, like)
        return self._layouts[key]

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self.tower._apply(fn)
        return self

    def extra_repr(self):
        return f"tower={type(self.tower).__name__} (frozen, not in state_dict)"


def split_context(context, num_prompts, width):
    """Check ``context``; split it into ``(shared [N, W] or None, per_prompt [C, N, W] or None)``.

    A 2-d context is shared by all prompts, a 3-d one has one row per prompt.
    """
    if context is None:
        return None, None
    if context.shape[-1] != width or context.dim() not in (2, 3):
        shape = list(context.shape)
        raise ValueError(f"context must be [N, {width}] or [C, N, {width}], not {shape}")
    if context.dim() == 2:
        return context, None
    if context.shape[0] != num_prompts:
        rows = context.shape[0]
        raise ValueError(f"class-specific context has {rows} rows for {num_prompts} prompts")
    return None, context


class PromptGroup(NamedTuple):
    """One checked group of C prompts: their token ids and their context (or none)."""

    token_ids: list  # C lists of token ids
    shared: Optional[torch.Tensor] = None  # [N, W], shared by the C prompts
    own: Optional[torch.Tensor] = None  # [C, N, W], one context per prompt

    @property
    def n_ctx(self):
        """N, the number of context vectors in each prompt (0 without context)."""
        # int(): a Python number even while torch.jit traces (shapes are tensors then)
        if self.shared is not None:
            return int(self.shared.shape[0])
        return 0 if self.own is None else int(self.own.shape[1])

    def context_rows(self):
        """The context vectors as rows, ``[N, W]`` or ``[C * N, W]`` (prompt by prompt), or
        None."""
        context = self.shared if self.shared is not None else self.own
        return None if context is None else context.reshape(-1, context.shape[-1])

    def num_context_rows(self):
        return self.n_ctx * (1 if self.shared is not None else len(self.token_ids))

    def key(self):
        """What a layout depends on: the ids and the kind and length of the context."""
        kind = "shared" if self.shared is not None else "own" if self.own is not None else None
        return tuple(map(tuple, self.token_ids)), kind, self.n_ctx


def split_groups(groups, width):
    """Check ``[(token_ids, context)]`` -> list of :class:`PromptGroup`."""
    if not groups or not all(ids for ids, _ in groups):
        raise ValueError("no prompts to encode")
    return [PromptGroup(ids, *split_context(context, len(ids), width)) for ids, context in groups]


def context_offsets(groups, start):
    """Row of each group's first context vector in :func:`embedding_source`'s output whose first
    ``start`` rows are token embeddings (the next group's row for a group without context)."""
    offsets = []
    for group in groups:
        offsets.append(start)
        start += group.num_context_rows()
    return offsets


def embedding_source(groups, token_embeddings):
    """Token embeddings [T, W] and then every group's context rows, cast to them: [T + sum, W].

    One tensor from which a single gather builds every prompt's input embeddings."""
    parts = [token_embeddings]
    parts += [rows.to(token_embeddings) for rows in (g.context_rows() for g in groups)
              if rows is not None]
    return torch.cat(parts) if len(parts) > 1 else token_embeddings


def build_text_encoder(cfg):
    """Build the text encoder named by ``cfg.MODEL.ADAPTER.TEXT_ENCODER.NAME``."""
    name = cfg.MODEL.ADAPTER.TEXT_ENCODER.NAME
    return lookup(TEXT_ENCODER_REGISTRY, name, "MODEL.ADAPTER.TEXT_ENCODER.NAME")(cfg)
