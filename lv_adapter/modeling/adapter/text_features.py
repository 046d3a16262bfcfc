"""Where the LV-Adapter's text features come from: the live prompts, or a file of dumped ones.

Both sources are modules whose ``forward()`` returns ``{task: [C_task, D]}`` (L2-normalised):

* :class:`LiveTextFeatures` runs the task prompts through the text encoder. In training that
  happens at every step (the context vectors learn); in evaluation the result is computed once
  and cached, because the prompts cannot change without a training step or a weight load.
* :class:`FileTextFeatures` reads features written by ``tools/dump_text_features.py``
  (:func:`save_text_features`), so that inference needs no text encoder at all.
"""
import itertools
import logging
import os

import torch
from torch import nn

from lv_adapter.utils.io import atomic_path

__all__ = ["FileTextFeatures", "LiveTextFeatures", "load_text_features", "save_text_features"]

logger = logging.getLogger(__name__)

FILE_FORMAT = "lv_adapter.text_features"
FILE_VERSION = 1
FILE_KEY = "MODEL.ADAPTER.TEXT_FEATURES_FILE"


def _check_counts(features, class_counts, where):
    """Raise ValueError unless ``features`` has exactly the tasks and class counts expected."""
    if set(features) != set(class_counts):
        raise ValueError(
            f"{where} has text features for tasks {sorted(features)}, but the model's tasks "
            f"(MODEL.TASKS) are {sorted(class_counts)}"
        )
    wrong = {t: (tuple(features[t].shape), n) for t, n in class_counts.items()
             if features[t].dim() != 2 or features[t].shape[0] != n}
    if wrong:
        rows = ", ".join(f"{t}: features of shape {shape} for {n} classes"
                         for t, (shape, n) in wrong.items())
        raise ValueError(f"{where} does not fit the model's heads ({rows})")


class LiveTextFeatures(nn.Module):
    """Text features from the task prompts, cached while they cannot change.

    The cache is used only in eval mode and only when no gradient is wanted (autograd off, as in
    detectron2's evaluation and predictors, or prompts that learn nothing). It is dropped by
    ``train()`` and by every forward in training mode, and it is keyed on the storage and the
    in-place version counter of every parameter and buffer of the prompts and on the module's
    device and dtype, so an optimizer step, ``load_state_dict`` or ``.to(...)`` in eval mode
    recomputes it too.

    Args:
        prompts (nn.Module): ``TaskPrompts``: ``forward() -> {task: [C_task, D]}``, ``output_dim``.
        class_counts (dict[str, int]): task -> number of classes of its head; the prompts must
            give exactly these.
    """

    def __init__(self, prompts, class_counts):
        super().__init__()
        self.prompts = prompts
        self.class_counts = dict(class_counts)
        self.output_dim = prompts.output_dim
        # Follows the module's device and dtype, for the cache key: the prompts may hold tensors
        # (a frozen text tower) that are neither parameters nor buffers.
        self.register_buffer("_placement", torch.zeros(0), persistent=False)
        self._cache = None  # (state key, features)

    def train(self, mode=True):
        if mode:
            self._cache = None
        return super().train(mode)

    def forward(self):
        """Returns dict task -> [C_task, D]."""
        if self.training or (torch.is_grad_enabled() and self._learns()):
            self._cache = None
            return self._compute()
        key = self._state_key()
        if self._cache is None or self._cache[0] != key:
            # Plain tensors even under torch.inference_mode, so that a later autograd-enabled
            # eval forward (prompts frozen, projection learning) may use them.
            with torch.inference_mode(False), torch.no_grad():
                self._cache = (key, self._compute())
        return self._cache[1]

    def _learns(self):
        return any(p.requires_grad for p in self.prompts.parameters())

    def _state_key(self):
        tensors = itertools.chain(self.prompts.parameters(), self.prompts.buffers())
        placement = (self._placement.device, self._placement.dtype)
        return placement, tuple((t.data_ptr(), t._version) for t in tensors)

    def _compute(self):
        features = self.prompts()
        _check_counts(features, self.class_counts, "the task prompts (MODEL.ADAPTER.PROMPT)")
        return {task: features[task] for task in self.class_counts}


class FileTextFeatures(nn.Module):
    """Text features read once from a file; no text encoder, no prompt parameters.

    The features are non-persistent buffers: they follow the model across devices but are not
    written to checkpoints (the file is their source). A checkpoint trained with the live text
    encoder carries the learned prompt tensors under this module's name; loading it here drops
    them with one info line, since the file already holds what they produced.

    Args:
        path (str): a file written by :func:`save_text_features`.
        class_counts (dict[str, int]): task -> number of classes of its head.
        encoder (dict or None): the config's text-encoder settings; a file dumped with other
            settings gets a warning (its features may not be what the checkpoint learned on).
    """

    def __init__(self, path, class_counts, encoder=None):
        super().__init__()
        self.path = path
        self.class_counts = dict(class_counts)
        data = load_text_features(path, self.class_counts)
        _warn_if_other_encoder(data, encoder, path)
        for task in self.class_counts:
            self.register_buffer(f"features_{task}", data["features"][task], persistent=False)
        self.output_dim = int(data["features"][next(iter(self.class_counts))].shape[1])
        logger.info(
            f"Text features of {self.class_counts} read from {path} (encoder "
            f"{data.get('encoder') or '?'}, dumped from {data.get('weights') or '?'}); "
            "no text encoder is built"
        )

    def forward(self):
        """Returns dict task -> [C_task, D]."""
        return {task: getattr(self, f"features_{task}") for task in self.class_counts}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        ignored = [key for key in state_dict if key.startswith(prefix)]
        for key in ignored:
            del state_dict[key]
        if ignored:
            more = ", ..." if len(ignored) > 3 else ""
            logger.info(
                f"{prefix[:-1]}: text features come from {self.path}; ignoring the checkpoint's "
                f"{len(ignored)} prompt tensors ({', '.join(ignored[:3])}{more})"
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _warn_if_other_encoder(data, encoder, path):
    stored = data.get("encoder") or {}
    differ = sorted(k for k in set(stored) & set(encoder or {}) if stored[k] != encoder[k])
    if differ:
        logger.warning(
            f"{path} was dumped with text encoder "
            + ", ".join(f"{k}={stored[k]!r}" for k in differ)
            + "; this config says "
            + ", ".join(f"{k}={encoder[k]!r}" for k in differ)
        )


def save_text_features(path, features, **metadata):
    """Write text features atomically in the format :func:`load_text_features` reads.

    Args:
        features (dict[str, Tensor]): task -> [C_task, D].
        metadata: plain values (str, numbers, lists, dicts) stored beside them, e.g. ``encoder``
            (the text-encoder settings), ``prompt`` (the prompt settings), ``weights``.
    """
    data = {
        "format": FILE_FORMAT,
        "version": FILE_VERSION,
        "tasks": list(features),
        "class_counts": {t: int(f.shape[0]) for t, f in features.items()},
        "features": {t: f.detach().to("cpu", torch.float32).contiguous()
                     for t, f in features.items()},
        **metadata,
    }
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_text_features(path, class_counts):
    """Read a text-features file and check it fits a model with heads of ``class_counts``.

    Returns:
        dict: the file's contents (``features``: task -> float [C_task, D], metadata).
    Raises:
        FileNotFoundError, ValueError: naming the file and what is wrong.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{FILE_KEY}: text features file {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{FILE_KEY}: {path} is not a text features file ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FILE_FORMAT:
        raise ValueError(
            f"{FILE_KEY}: {path} is not a text features file (write one with "
            "tools/dump_text_features.py)"
        )
    features = data.get("features")
    if not isinstance(features, dict) or not all(
            isinstance(f, torch.Tensor) and f.dim() == 2 for f in features.values()):
        raise ValueError(f"{FILE_KEY}: {path} has no 'features' entry of task -> [classes, dim] "
                         "tensors (a damaged or hand-made file; dump it again with "
                         "tools/dump_text_features.py)")
    _check_counts(features, class_counts, f"{FILE_KEY} {path}")
    dims = {t: int(features[t].shape[1]) for t in class_counts}
    if len(set(dims.values())) != 1:
        raise ValueError(f"{FILE_KEY} {path}: tasks have text features of different sizes {dims}")
    return data
