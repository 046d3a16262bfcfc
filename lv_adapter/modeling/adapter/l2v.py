"""How language and vision meet in the LV-Adapter: L2V, V2L and the score-map fallback.

All three update their input as ``x + scale * f(x, other)`` with a learnable per-channel
``scale`` that starts small, so at initialisation the adapter is close to the identity and the
pre-trained features (or text features) pass through almost unchanged; training decides how much
the other modality may change them.
"""
import torch
from torch import nn
from torch.nn import functional as F

from lv_adapter.modeling.layers import TransformerDecoderLayer

__all__ = ["ResidualDecoder", "TextScoreFusion"]


class ResidualDecoder(nn.Module):
    """``query + scale * TransDecoder(q=query, k=memory, v=memory)``.

    As L2V the query is the flattened P5 map and the memory the projected text features (the
    paper's ``A_{L->V}(T, z5)``); as V2L the roles swap and the text features are updated from
    the visual context. Each layer is the shared :class:`TransformerDecoderLayer`
    (self-attention among the queries, cross-attention to the memory, FFN).

    Args:
        dim (int): width of queries and memory (the FPN's channels).
        num_layers (int): decoder layers (>= 1).
        num_heads, ffn_dim (int), dropout (float): of each layer.
        init_scale (float): initial value of every channel of the residual scale.
    """

    def __init__(self, dim, num_layers, num_heads, ffn_dim, dropout, init_scale):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(dim, num_heads, ffn_dim, dropout) for _ in range(num_layers)
        )
        self.scale = nn.Parameter(torch.full((dim,), float(init_scale)))

    def forward(self, query, memory, query_pos=None, memory_pos=None):
        """query: [B, Lq, dim]; memory: [B, Lm, dim]; *_pos broadcast to them -> [B, Lq, dim]."""
        out = query
        for layer in self.layers:
            out = layer(out, memory, query_pos, memory_pos)
        return query + self.scale * out


class TextScoreFusion(nn.Module):
    """``tokens + scale * Linear(cos(tokens, texts))``: language without cross-attention.

    Each P5 token gets its cosine similarity to every text feature (a per-class score map, as in
    DenseCLIP's pixel-text matching), mapped back to the FPN width by a linear layer. This is how
    the text features reach the visual features when L2V is switched off (table 4, rows 3 and 4),
    so that the learned prompts (and V2L) still have an effect and still learn.

    Args:
        dim (int): width of tokens and text features.
        num_texts (int): number of text features (all tasks' classes together).
        init_scale (float): initial value of every channel of the residual scale.
    """

    def __init__(self, dim, num_texts, init_scale):
        super().__init__()
        self.proj = nn.Linear(num_texts, dim)
        self.scale = nn.Parameter(torch.full((dim,), float(init_scale)))

    def forward(self, query, memory, query_pos=None, memory_pos=None):
        """query: [B, L, dim] tokens; memory: [B, K, dim] texts -> [B, L, dim].

        The positions are accepted (same call as :class:`ResidualDecoder`) and not used: a score
        compares a token with a text, wherever the token is.
        """
        scores = F.normalize(query, dim=-1) @ F.normalize(memory, dim=-1).transpose(1, 2)
        return query + self.scale * self.proj(scores)
