"""CLIP's text tower (through open_clip) as a frozen text encoder that learned context can pass.

The paper's text encoder: ``T = L2_NORM(TE([v_t, n_i]))`` with TE the text tower of CLIP RN50.
Prompts enter as token embeddings, so gradients reach the learned context vectors while the tower
stays frozen. Exact savings over open_clip's ``encode_text`` on 77 positions:

* positions after a prompt's end token never influence it under the causal mask, so none are run
  (not even padding to the longest prompt);
* the start token and a group's shared context (a task's) form a prefix that, under the causal
  mask, has the same states in every prompt of the group: it runs once and every prompt's own
  tokens attend to its keys and values. In the last block only the end-token rows, the only ones
  pooled, are computed;
* all groups (all tasks, all templates) run together: every block is one pass over all their
  tokens, not one per task, since the text side of a training step is bound by kernel launches
  rather than arithmetic on a GPU.

:meth:`OpenCLIPTextEncoder.forward_dense` is the straightforward path (whole sequences through
open_clip's own transformer) that the tests and ``tools/text_tower_flops.py`` compare against.
"""
import contextlib
from typing import NamedTuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from torch import nn

from lv_adapter.modeling.adapter.text.base import (
    TEXT_ENCODER_REGISTRY,
    FrozenTextEncoder,
    context_offsets,
    embedding_source,
    split_groups,
)
from lv_adapter.modeling.clip_loading import create_clip_model, create_clip_tokenizer

# Random ("") towers are drawn from this seed: a checkpoint's learned context only means something
# with the tower it was trained with, and the tower is rebuilt (not loaded) in every process.
RANDOM_TOWER_SEED = 0
# Token id open_clip's tokenizer pads with.
PAD_ID = 0
# Multiple that the number of key slots of the one-pass attention is padded to (see _tensors).
KEY_ALIGNMENT = 16


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


class _Layout(NamedTuple):
    """Where every token of every prompt of every group sits; built once per group structure.

    The tower's states are one flat list of F rows: first the G groups' prefixes (start token +
    shared context, padded to the longest prefix P), then each prompt's own tokens (own context,
    text tokens, end token), without padding. Row-wise operations (norms, projections, MLPs) run
    once on all F rows. Attention runs on B = G + R sequences (R prompts in all): sequence g has
    prefix g's rows as queries; the sequence of a prompt has its own rows as queries. Keys come
    from the group's prefix (P slots) and, for a prompt, its own rows (S slots). Queries are
    padded to Q slots. A key is allowed if it is real and its position is not after the query's:
    the same causal attention as over each prompt's whole sequence.
    """

    token_ids: torch.Tensor  # [T]: start token, then every prompt's text ids + end token
    source: torch.Tensor  # [F]: row of embedding_source() that each flat row starts from
    positions: torch.Tensor  # [F]: position (for the positional embedding) of each flat row
    queries: torch.Tensor  # [B, Q]: flat row of each query slot (0 for padding)
    keys: torch.Tensor  # [B, K]: flat row of each key slot (0 for padding), K >= P + S
    allowed: torch.Tensor  # [B, 1, Q, K]: 0 where a key is allowed, -inf elsewhere
    out_seq: torch.Tensor  # [F]: sequence whose output is each flat row's
    out_slot: torch.Tensor  # [F]: query slot of that sequence
    ends: torch.Tensor  # [R]: flat row of each prompt's end token
    end_allowed: torch.Tensor  # [R, 1, 1, K]: the same for the end tokens (sequences G..)
    sizes: list  # C_g, prompts per group


def _split_heads(x, heads):
    """[B, L, W] -> [B, heads, L, W / heads]."""
    b, n, w = x.shape
    return x.view(b, n, heads, w // heads).transpose(1, 2)


def _attend(block, x, layout):
    """One open_clip residual attention block on all F flat rows [F, W] -> [F, W]."""
    attn, heads, w = block.attn, block.attn.num_heads, x.shape[-1]
    qkv = F.linear(block.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)  # [F, 3W]
    q = _split_heads(qkv[:, :w][layout.queries], heads)  # [B, heads, Q, d]
    k, v = (_split_heads(t, heads) for t in qkv[:, w:][layout.keys].chunk(2, dim=-1))
    out = F.scaled_dot_product_attention(q, k, v, layout.allowed)  # [B, heads, Q, d]
    out = out.transpose(1, 2)[layout.out_seq, layout.out_slot]  # [F, heads, d]
    return _finish_block(block, x, out.reshape(x.shape))


def _attend_ends(block, x, layout):
    """The last block, computed for the R end-token rows only (the only ones pooled): [F, W] ->
    [R, W]. Every row still gives its keys and values."""
    attn, heads, w = block.attn, block.attn.num_heads, x.shape[-1]
    w_q, w_kv = attn.in_proj_weight.split([w, 2 * w])
    bias = attn.in_proj_bias
    b_q, b_kv = bias.split([w, 2 * w]) if bias is not None else (None, None)
    normed = block.ln_1(x)
    kv = F.linear(normed, w_kv, b_kv)[layout.keys[-len(layout.ends):]]  # [R, K, 2W]
    k, v = (_split_heads(t, heads) for t in kv.chunk(2, dim=-1))
    q = _split_heads(F.linear(normed[layout.ends], w_q, b_q)[:, None], heads)  # [R, heads, 1, d]
    out = F.scaled_dot_product_attention(q, k, v, layout.end_allowed)
    return _finish_block(block, x[layout.ends], out.reshape(len(layout.ends), w))


def _finish_block(block, x, attended):
    """The rest of an open_clip residual block after attention: residual, then the MLP.
    x, attended: [N, W] (heads merged)."""
    x = x + block.ls_1(block.attn.out_proj(attended))
    return x + block.ls_2(block.mlp(block.ln_2(x)))


def _prefix_length(group):
    """Start token + shared context: the positions every prompt of the group has in common."""
    return 1 + (group.n_ctx if group.shared is not None else 0)


def _layout_of(groups, sot_id, eot_id, max_length, like):
    """The :class:`_Layout` of ``groups`` (:class:`PromptGroup`), on ``like``'s device.

    Raises:
        ValueError: if a prompt is longer than the tower's ``max_length`` positions.
    """
    prefix = max(_prefix_length(g) for g in groups)
    token_ids = [sot_id] + [t for g in groups for ids in g.token_ids for t in (*ids, eot_id)]
    context_start = context_offsets(groups, len(token_ids))
    source, positions, sequences = [], [], []  # sequence: (group, [(row, position)] of its own)
    for g, group in enumerate(groups):  # prefixes; rows past a shorter prefix are padding
        length = _prefix_length(group)
        source += [context_start[g] + j - 1 if 0 < j < length else 0 for j in range(prefix)]
        positions += list(range(prefix))
        sequences.append((g, None))
    token_row = 1
    for g, group in enumerate(groups):  # every prompt's own rows, unpadded
        start, n_own = _prefix_length(group), group.n_ctx if group.own is not None else 0
        for c, ids in enumerate(group.token_ids):
            if start + n_own + len(ids) + 1 > max_length:
                raise ValueError(
                    f"a prompt of {start + n_own + len(ids) + 1} tokens (start, context, class "
                    f"name, end) exceeds the text tower's {max_length} positions: reduce "
                    "MODEL.ADAPTER.PROMPT.N_CTX or shorten the template")
            own = [context_start[g] + c * n_own + j for j in range(n_own)]
            own += range(token_row, token_row + len(ids) + 1)
            token_row += len(ids) + 1
            first = len(source)
            source += own
            positions += range(start, start + len(own))
            sequences.append((g, [(first + j, start + j) for j in range(len(own))]))
    return _tensors(groups, prefix, token_ids, source, positions, sequences, like)


def _additive(allowed, dtype):
    """Boolean attention mask -> the additive one SDPA makes of it: 0 allowed, -inf not."""
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, float("-inf"))


def _tensors(groups, prefix, token_ids, source, positions, sequences, like):
    """:func:`_layout_of`'s lists as the tensors of a :class:`_Layout` on ``like``'s device."""
    own_length = max(len(rows) for _, rows in sequences if rows is not None)
    num_q = max(prefix, own_length)
    # Key slots rounded up with masked padding: CUDA's memory-efficient attention pads a mask
    # whose last dimension is not a multiple of KEY_ALIGNMENT, in every call otherwise.
    num_k = -(-(prefix + own_length) // KEY_ALIGNMENT) * KEY_ALIGNMENT
    b = len(sequences)
    queries = torch.zeros(b, num_q, dtype=torch.long)
    query_pos = torch.zeros(b, num_q, dtype=torch.long)  # padding queries see the start token
    keys = torch.zeros(b, num_k, dtype=torch.long)
    key_pos = torch.zeros(b, num_k, dtype=torch.long)
    real = torch.zeros(b, num_k, dtype=torch.bool)
    out_seq, out_slot, ends, end_slots = [0] * len(source), [0] * len(source), [], []
    for i, (g, rows) in enumerate(sequences):
        length = _prefix_length(groups[g])
        keys[i, :prefix] = torch.arange(g * prefix, (g + 1) * prefix)
        key_pos[i, :prefix] = torch.arange(prefix)
        real[i, :length] = True
        if rows is None:  # a prefix: its rows are the queries
            rows = [(g * prefix + j, j) for j in range(prefix)]
        else:
            keys[i, prefix:prefix + len(rows)] = torch.tensor([r for r, _ in rows])
            key_pos[i, prefix:prefix + len(rows)] = torch.tensor([p for _, p in rows])
            real[i, prefix:prefix + len(rows)] = True
            ends.append(rows[-1][0])
            end_slots.append(len(rows) - 1)
        for slot, (row, pos) in enumerate(rows):
            queries[i, slot], query_pos[i, slot] = row, pos
            out_seq[row], out_slot[row] = i, slot
    allowed = (real[:, None, :] & (key_pos[:, None, :] <= query_pos[:, :, None]))[:, None]
    num_prompts = len(ends)
    end_allowed = allowed[b - num_prompts:][torch.arange(num_prompts), :, end_slots][:, :, None]
    tensors = [token_ids, source, positions, queries, keys, allowed, out_seq, out_slot, ends,
               end_allowed]
    tensors = [torch.as_tensor(t, dtype=None if torch.is_tensor(t) else torch.long)
               for t in tensors]
    # Additive masks in the tower's dtype, made once: a boolean mask would be converted to one
    # in every block.
    tensors[5], tensors[9] = (_additive(t, like.dtype) for t in (tensors[5], tensors[9]))
    tensors = [t.to(like.device) for t in tensors]
    return _Layout(*tensors, sizes=[len(g.token_ids) for g in groups])


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
            clip = create_clip_model(model_name, weights, "MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS")
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

    def encode_groups(self, groups):
        """Encode every group of prompts in one pass; see :class:`FrozenTextEncoder`.

        Returns:
            list[Tensor]: per group [C_g, D], L2-normalised.
        """
        groups = split_groups(groups, self.width)
        embedding = self.tower.token_embedding
        layout = self._layout(groups, embedding.weight)
        source = embedding_source(groups, embedding(layout.token_ids))
        pos = self.tower.positional_embedding.to(source.dtype)
        x = source[layout.source] + pos[layout.positions]  # [F, W]
        blocks = self.tower.blocks
        for block in blocks[:-1]:
            x = _attend(block, x, layout)
        features = self.tower.pool_project(_attend_ends(blocks[-1], x, layout))  # [R, D]
        return list(features.split(layout.sizes))

    def _build_layout(self, groups, like):
        return _layout_of(groups, self.sot_id, self.eot_id, self.context_length, like)

    def forward_dense(self, token_ids, context=None, length=None):
        """The reference path: each prompt as one whole sequence through open_clip's transformer.

        Args:
            length (int or None): positions to run; default the longest prompt's up to its end
                token, ``self.context_length`` for exactly open_clip's 77-position computation.
        Returns:
            Tensor [C, D], L2-normalised.
        """
        (group,) = split_groups([(token_ids, context)], self.width)
        c, n = len(token_ids), group.n_ctx
        rows = [[self.sot_id] + [PAD_ID] * n + list(ids) + [self.eot_id] for ids in token_ids]
        length = length or max(map(len, rows))
        if not max(map(len, rows)) <= length <= self.context_length:
            raise ValueError(f"length {length} outside [{max(map(len, rows))}, "
                             f"{self.context_length}]")
        ids = torch.tensor([row + [PAD_ID] * (length - len(row)) for row in rows])
        x = self.embed_tokens(ids)  # [C, length, W]
        if n:
            context = group.shared.expand(c, -1, -1) if group.shared is not None else group.own
            x = torch.cat([x[:, :1], context.to(x), x[:, 1 + n:]], dim=1)
        x = x + self.tower.positional_embedding[:length].to(x.dtype)
        causal = torch.full((length, length), float("-inf"), device=x.device).triu(1)
        x = self.tower.transformer(x, attn_mask=causal.to(x.dtype))
        ends = torch.tensor([len(row) - 1 for row in rows], device=x.device)
        return self.tower.pool_project(x[torch.arange(c, device=x.device), ends])
