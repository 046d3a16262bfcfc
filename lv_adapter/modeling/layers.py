"""Building blocks shared by the heads and the adapter: MLP, FFN, attention, positions."""
import functools
import math

import torch
from torch import nn
from torch.nn import functional as F


class MLP(nn.Module):
    """A stack of Linear layers with ReLU between them (none after the last).

    Args:
        in_dim, hidden_dim, out_dim (int): sizes; ``num_layers`` >= 1 Linear layers in all.
    """

    def __init__(self, in_dim, hidden_dim, out_dim, num_layers):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        """x: [..., in_dim] -> [..., out_dim]."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class FFN(nn.Module):
    """Transformer feed-forward block with residual connection and post-LayerNorm."""

    def __init__(self, dim, hidden_dim, dropout=0.0):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
        )
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        """x: [..., dim] -> [..., dim]."""
        return self.norm(x + self.dropout(self.mlp(x)))


class Attention(nn.Module):
    """Multi-head attention with residual connection and post-LayerNorm.

    Positional embeddings are added to queries and keys, not to values (DETR's convention).
    Inputs are batch-first: [B, L, dim].
    """

    def __init__(self, dim, num_heads, dropout=0.0):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, query, key_value, query_pos=None, key_pos=None):
        """query: [B, Lq, dim]; key_value: [B, Lk, dim]; *_pos broadcastable to them."""
        q = query if query_pos is None else query + query_pos
        k = key_value if key_pos is None else key_value + key_pos
        out = self.attn(q, k, key_value, need_weights=False)[0]
        return self.norm(query + self.dropout(out))


class TransformerDecoderLayer(nn.Module):
    """Self-attention among queries, cross-attention to a memory, then an FFN.

    Used by the MaskFormer predictor (queries attend to pixel features) and by the L2V adapter
    (P5 tokens attend to text embeddings).
    """

    def __init__(self, dim, num_heads, ffn_dim, dropout=0.0, self_attention=True):
        super().__init__()
        self.self_attn = Attention(dim, num_heads, dropout) if self_attention else None
        self.cross_attn = Attention(dim, num_heads, dropout)
        self.ffn = FFN(dim, ffn_dim, dropout)

    def forward(self, query, memory, query_pos=None, memory_pos=None):
        """query: [B, Lq, dim]; memory: [B, Lm, dim] -> [B, Lq, dim]."""
        if self.self_attn is not None:
            query = self.self_attn(query, query, query_pos, query_pos)
        query = self.cross_attn(query, memory, query_pos, memory_pos)
        return self.ffn(query)


def sine_position_embedding(height, width, dim, device=None, temperature=10000.0):
    """2D sine/cosine position embedding normalized to the map size.

    The result depends only on the arguments, and every forward of the MaskFormer predictor and
    of the LV-Adapter asks for the same few sizes, so it is computed once per argument set and
    shared: treat it as read-only (add it, never modify it in place).

    Returns:
        Tensor: [height * width, dim] float32, row-major over the map; the first dim/2 channels
        encode y, the rest x.
    """
    if dim % 4 != 0:
        raise ValueError(f"position embedding dim must be a multiple of 4, got {dim}")
    device = torch.device(device or "cpu")
    return _sine_position_embedding(int(height), int(width), int(dim), device, float(temperature))


@functools.lru_cache(maxsize=64)
def _sine_position_embedding(height, width, dim, device, temperature):
    # A plain tensor even when first asked for under torch.inference_mode: a later forward with
    # autograd on (training) may add it to tensors that need gradients.
    with torch.inference_mode(False), torch.no_grad():
        quarter = dim // 4
        freqs = temperature ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
        scale = 2 * math.pi
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height * scale
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * scale
        y = ys[:, None] / freqs  # [H, dim/4]
        x = xs[:, None] / freqs  # [W, dim/4]
        y = torch.cat([y.sin(), y.cos()], dim=1)[:, None, :].expand(height, width, 2 * quarter)
        x = torch.cat([x.sin(), x.cos()], dim=1)[None, :, :].expand(height, width, 2 * quarter)
        return torch.cat([y, x], dim=2).reshape(height * width, dim)
