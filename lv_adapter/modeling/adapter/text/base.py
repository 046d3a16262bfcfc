"""What every text encoder of the LV-Adapter shares: the registry and the frozen-tower handling.

A text encoder turns prompts, each made of optional learned context vectors followed by the tokens
of a text, into L2-normalised features. Its pre-trained tower is frozen yet differentiable with
respect to the context vectors, and it is no part of the model's checkpoint: the tower's weights
come from the configured weights every time the model is built.
"""
import torch
from detectron2.utils.registry import Registry
from torch import nn

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
    * ``forward(token_ids, context=None) -> Tensor[C, D]``, L2-normalised, for C prompts
      ``[start] [context] [tokens of prompt c] [end]``: ``token_ids`` is a list of C id lists
      (from ``tokenize``), ``context`` is None, ``[N, width]`` (shared by all C prompts) or
      ``[C, N, width]`` (one context per prompt).
    """

    def _set_tower(self, tower):
        tower.eval()
        tower.requires_grad_(False)
        # Stored in __dict__ directly: nn.Module.__setattr__ would register it as a submodule.
        self.__dict__["_tower"] = tower

    @property
    def tower(self):
        """The frozen pre-trained module (read-only use)."""
        return self.__dict__["_tower"]

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


def pad_token_ids(token_ids, end_id, pad_id):
    """``[ids + [end_id]]`` padded with ``pad_id`` to the longest: LongTensor [C, S] and the end
    positions LongTensor [C]."""
    if not token_ids:
        raise ValueError("no prompts to encode")
    length = max(len(ids) for ids in token_ids) + 1
    rows = [list(ids) + [end_id] + [pad_id] * (length - len(ids) - 1) for ids in token_ids]
    ends = torch.tensor([len(ids) for ids in token_ids], dtype=torch.long)
    return torch.tensor(rows, dtype=torch.long), ends


def build_text_encoder(cfg):
    """Build the text encoder named by ``cfg.MODEL.ADAPTER.TEXT_ENCODER.NAME``."""
    return TEXT_ENCODER_REGISTRY.get(cfg.MODEL.ADAPTER.TEXT_ENCODER.NAME)(cfg)
