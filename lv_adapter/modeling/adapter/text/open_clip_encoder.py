"""CLIP's text tower (through open_clip) as a frozen text encoder that learned context can pass.

The paper's text encoder: ``T = L2_NORM(TE([v_t, n_i]))`` with TE the text tower of CLIP RN50.
Prompts enter as token embeddings, so gradients reach the learned context vectors while the tower
stays frozen. Two exact savings over open_clip's ``encode_text`` on 77 positions:

* positions after a prompt's end token never influence it under the causal mask, so only the
  positions up to the longest prompt's end token are run;
* the start token and a task's shared context form a prefix that, under the causal mask, has the
  same states in every prompt of the task: it runs once (batch 1) and every prompt's remaining
  tokens attend to its cached keys and values. In the last block only the end-token rows, the
  only ones pooled, are computed.

:meth:`OpenCLIPTextEncoder.forward_dense` is the straightforward path (whole sequences through
open_clip's own transformer) that the tests and ``tools/text_tower_flops.py`` compare against.
"""
import contextlib

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from lv_adapter.modeling.adapter.text.base import (
    TEXT_ENCODER_REGISTRY,
    FrozenTextEncoder,
    pad_token_ids,
    split_context,
)
from lv_adapter.modeling.clip_loading import create_clip_model, create_clip_tokenizer

# Random ("") towers are drawn from this seed: a checkpoint's learned context only means something
# with the tower it was trained with, and the tower is rebuilt (not loaded) in every process.
RANDOM_TOWER_SEED = 0
# Token id open_clip's tokenizer pads with.
PAD_ID = 0


class CLIPTextTower(nn.Module):
    """The modules of an open_clip model that ``encode_text`` uses, and nothing else.

    Args:
        clip: an open_clip ``CLIP`` (tower on the model) or ``CustomTextCLIP`` (tower in ``.text``).
        name (str): the model's name, for error messages.
    """

    def __init__(self, clip, name):
        super().__init__()
        src = clip.text if isinstance(getattr(clip, "text", None), nn.Module) else clip
        self.token_embedding = src.token_embedding
        self.positional_embedding = src.positional_embedding
        self.transformer = src.transformer
        self.ln_final = src.ln_final
        self.text_projection = src.text_projection  # a [W, D] Parameter, an nn.Linear or None
        self.pool_type = getattr(src, "text_pool_type", getattr(src, "pool_type", "argmax"))
        _check_supported(src, self, name)

    @property
    def blocks(self):
        return self.transformer.resblocks

    @property
    def width(self):
        return self.token_embedding.embedding_dim

    @property
    def output_dim(self):
        proj = self.text_projection
        if proj is None:
            return self.width
        return proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1]

    def pool_project(self, x):
        """[C, W] end-token states -> [C, D] L2-normalised features (final norm, projection)."""
        x = self.ln_final(x)
        proj = self.text_projection
        if isinstance(proj, nn.Linear):
            x = proj(x)
        elif proj is not None:
            x = x @ proj
        return F.normalize(x, dim=-1)


def _check_supported(src, tower, name):
    """Fail clearly on open_clip text towers this wrapper does not run (HF towers, CoCa, ...)."""
    where = f"open_clip model {name!r} (MODEL.ADAPTER.TEXT_ENCODER.MODEL)"
    if getattr(src, "cls_emb", None) is not None:
        raise ValueError(f"{where} pools a CLS token; only end-of-text pooling is supported")
    if getattr(src, "attn_mask", None) is None:
        # truncation and the shared prefix are exact only under the causal mask
        raise ValueError(f"{where} has no causal mask; only causal text towers are supported")
    if tower.pool_type != "argmax":
        raise ValueError(f"{where} pools with {tower.pool_type!r}; only 'argmax' is supported")
    if not getattr(tower.transformer, "batch_first", False):
        raise ValueError(f"{where} has a sequence-first transformer; open_clip >= 2.26 is needed")
    for block in tower.blocks:
        attn = getattr(block, "attn", None)
        if not isinstance(attn, nn.MultiheadAttention) or attn.in_proj_weight is None:
            raise ValueError(f"{where} uses custom attention blocks, which are not supported")


def _split_heads(x, heads):
    """[B, L, W] -> [B, heads, L, W / heads]."""
    b, n, w = x.shape
    return x.view(b, n, heads, w // heads).transpose(1, 2)


def _merge_heads(x):
    """[B, heads, L, d] -> [B, L, heads * d]."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


def _finish_block(block, x, attended):
    """The rest of an open_clip residual block after attention: residual, then the MLP."""
    x = x + block.ls_1(block.attn.out_proj(_merge_heads(attended)))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _shared_prefix_block(block, h_p, h_s, ends=None):
    """One open_clip residual attention block on a shared prefix and the prompts' suffixes.

    The prefix's keys and values are computed once and every suffix attends to them and, causally,
    to its own positions: the same attention as over the whole causal sequence.

    Args:
        h_p (Tensor): [1, P, W] prefix states (start token + shared context).
        h_s (Tensor): [C, S, W] suffix states of the C prompts.
        ends (LongTensor or None): [C] end-token positions in the suffix. Given for the last
            block: only those rows are computed and the prefix is not updated.

    Returns:
        (h_p [1, P, W], h_s [C, S, W]), or with ``ends`` (None, [C, 1, W]).
    """
    attn, heads = block.attn, block.attn.num_heads
    (c, s, w), p = h_s.shape, h_p.shape[1]
    w_q, w_kv = attn.in_proj_weight.split([w, 2 * w])
    bias = attn.in_proj_bias
    b_q, b_kv = bias.split([w, 2 * w]) if bias is not None else (None, None)
    n_p, n_s = block.ln_1(h_p), block.ln_1(h_s)
    k_p, v_p = (_split_heads(t, heads) for t in F.linear(n_p, w_kv, b_kv).chunk(2, dim=-1))
    k_s, v_s = (_split_heads(t, heads) for t in F.linear(n_s, w_kv, b_kv).chunk(2, dim=-1))
    keys = torch.cat([k_p.expand(c, -1, -1, -1), k_s], dim=2)
    values = torch.cat([v_p.expand(c, -1, -1, -1), v_s], dim=2)
    key_pos = torch.arange(p + s, device=h_s.device)
    if ends is None:
        x_s, n_q = h_s, n_s
        allowed = key_pos[None, :] <= p + torch.arange(s, device=h_s.device)[:, None]  # [S, P+S]
    else:
        index = ends.view(c, 1, 1).expand(c, 1, w)
        x_s, n_q = h_s.gather(1, index), n_s.gather(1, index)
        allowed = (key_pos[None, :] <= p + ends[:, None])[:, None, None, :]  # [C, 1, 1, P+S]
    q_s = _split_heads(F.linear(n_q, w_q, b_q), heads)
    x_s = _finish_block(block, x_s, F.scaled_dot_product_attention(q_s, keys, values, allowed))
    if ends is not None:
        return None, x_s
    q_p = _split_heads(F.linear(n_p, w_q, b_q), heads)
    x_p = _finish_block(block, h_p, F.scaled_dot_product_attention(q_p, k_p, v_p, is_causal=True))
    return x_p, x_s


@contextlib.contextmanager
def _seeded(seed):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@TEXT_ENCODER_REGISTRY.register()
class OpenCLIPTextEncoder(FrozenTextEncoder):
    """CLIP's frozen text tower; prompts ``[SOT] [context] [tokens] [EOT]``, pooled at EOT."""

    @configurable
    def __init__(self, *, model_name="RN50", weights="openai"):
        """
        Args:
            model_name (str): open_clip model name (``"RN50"``, the paper's).
            weights (str): open_clip pretrained tag (``"openai"``), a local checkpoint file, or
                ``""`` for random weights (drawn from a fixed seed, so rebuilds agree).
        """
        super().__init__()
        with _seeded(RANDOM_TOWER_SEED):
            clip = create_clip_model(model_name, weights)
        # Only the text tower is kept; the image tower is freed with ``clip``.
        self._set_tower(CLIPTextTower(clip, model_name))
        self._tokenizer = create_clip_tokenizer(model_name)
        self.sot_id = self._tokenizer.sot_token_id
        self.eot_id = self._tokenizer.eot_token_id
        if self.eot_id != self.tower.token_embedding.num_embeddings - 1:
            # argmax pooling finds the end token as the highest id of a row
            raise ValueError(f"open_clip model {model_name!r}: end token is not the highest id")
        self.model_name, self.weights = model_name, weights

    @classmethod
    def from_config(cls, cfg):
        node = cfg.MODEL.ADAPTER.TEXT_ENCODER
        return {"model_name": node.MODEL, "weights": node.WEIGHTS}

    @property
    def width(self):
        return self.tower.width

    @property
    def output_dim(self):
        return self.tower.output_dim

    @property
    def context_length(self):
        return self.tower.positional_embedding.shape[0]

    def tokenize(self, text):
        """BPE token ids of ``text`` (lower-cased as CLIP's tokenizer does), without SOT/EOT."""
        return self._tokenizer.encode(text)

    def embed_tokens(self, ids):
        """LongTensor [...] -> frozen token embeddings [..., W]."""
        return self.tower.token_embedding(ids.to(self.tower.token_embedding.weight.device))

    def forward(self, token_ids, context=None):
        """Encode C prompts; see :class:`FrozenTextEncoder`. Returns [C, D], L2-normalised."""
        prefix, suffix, ends = self._embed_prompts(token_ids, context)
        p, s = prefix.shape[1], suffix.shape[1]
        pos = self.tower.positional_embedding.to(prefix.dtype)
        h_p, h_s = prefix + pos[:p], suffix + pos[p:p + s]
        last = len(self.tower.blocks) - 1
        for i, block in enumerate(self.tower.blocks):
            h_p, h_s = _shared_prefix_block(block, h_p, h_s, ends if i == last else None)
        return self.tower.pool_project(h_s[:, 0])

    def forward_dense(self, token_ids, context=None, length=None):
        """The reference path: each prompt as one whole sequence through open_clip's transformer.

        Args:
            length (int or None): positions to run; default the longest prompt's up to its end
                token, ``self.context_length`` for exactly open_clip's 77-position computation.
        Returns:
            Tensor [C, D], L2-normalised.
        """
        prefix, suffix, ends = self._embed_prompts(token_ids, context)
        c, p = suffix.shape[0], prefix.shape[1]
        x = torch.cat([prefix.expand(c, -1, -1), suffix], dim=1)
        length = length or x.shape[1]
        if not x.shape[1] <= length <= self.context_length:
            raise ValueError(f"length {length} outside [{x.shape[1]}, {self.context_length}]")
        pad = self.embed_tokens(torch.tensor(PAD_ID)).to(x.dtype).expand(c, length - x.shape[1], -1)
        x = torch.cat([x, pad], dim=1) + self.tower.positional_embedding[:length].to(x.dtype)
        causal = torch.full((length, length), float("-inf"), device=x.device).triu(1)
        x = self.tower.transformer(x, attn_mask=causal.to(x.dtype))
        return self.tower.pool_project(x[torch.arange(c, device=x.device), p + ends])

    def _embed_prompts(self, token_ids, context):
        """Token embeddings: prefix [1, P, W] (SOT + shared context), suffix [C, S, W] (own context,
        tokens, EOT, padding) and the EOT positions in the suffix, LongTensor [C]."""
        shared, own = split_context(context, len(token_ids), self.width)
        weight = self.tower.token_embedding.weight
        prefix = weight[self.sot_id][None]
        if shared is not None:
            prefix = torch.cat([prefix, shared.to(weight)], dim=0)
        ids, ends = pad_token_ids(token_ids, self.eot_id, PAD_ID)
        suffix, ends = self.embed_tokens(ids), ends.to(weight.device)
        if own is not None:
            suffix, ends = torch.cat([own.to(weight), suffix], dim=1), ends + own.shape[1]
        if prefix.shape[0] + suffix.shape[1] > self.context_length:
            raise ValueError(
                f"a prompt of {prefix.shape[0] + suffix.shape[1]} tokens (start, context, class "
                f"name, end) exceeds {self.model_name}'s {self.context_length} positions: reduce "
                "MODEL.ADAPTER.PROMPT.N_CTX or shorten the template"
            )
        return prefix[None], suffix, ends
