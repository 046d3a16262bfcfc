"""The one place that imports open_clip: building a CLIP model from a name and weights.

The text encoder of the LV-Adapter and the CLIP image-trunk backbone both load CLIP through
:func:`create_clip_model`, so they read the same checkpoint the same way.
"""
import logging
import os

from lv_adapter.modeling.hub_weights import check_hub_weights

logger = logging.getLogger(__name__)


def create_clip_model(name, weights, key="MODEL.CLIP.WEIGHTS"):
    """Build open_clip model ``name`` (e.g. ``"RN50"``) on the CPU, in fp32.

    Args:
        name (str): an open_clip model name (``open_clip.list_models()``).
        weights (str): an open_clip pretrained tag such as ``"openai"`` (downloaded from the model
            hub, so it needs one), a path to a local checkpoint file, or ``""`` for random weights
            (tests, or training from scratch).
        key (str): the config key that named ``weights``, for the errors.

    Raises:
        HubUnreachableError: ``weights`` is a tag whose file is not cached and the hub cannot be
            reached (within seconds, not after the hub client's minute of retries).

    Returns:
        open_clip.model.CLIP (or CustomTextCLIP)
    """
    import open_clip  # imported here so that models given cached text features never import it

    if name not in open_clip.list_models():
        raise ValueError(
            f"unknown open_clip model {name!r} (MODEL.ADAPTER.TEXT_ENCODER.NAME or "
            f"MODEL.CLIP.NAME); known: {', '.join(sorted(open_clip.list_models())[:12])}, ..."
        )
    if weights and (os.sep in weights or weights.endswith((".pt", ".pth", ".bin", ".safetensors"))):
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"{key}: CLIP weights file {weights} does not exist")
    elif weights and weights not in open_clip.list_pretrained_tags_by_model(name):
        raise ValueError(
            f"{key}: {weights!r} is neither a file nor a pretrained tag of open_clip model "
            f"{name!r} (tags: {open_clip.list_pretrained_tags_by_model(name)})"
        )
    elif weights:
        check_hub_weights(key, name, weights, open_clip.get_pretrained_cfg(name, weights))
    logger.info(f"Building open_clip {name} with weights {weights or '(random)'}")
    return open_clip.create_model(
        name, pretrained=weights or None, require_pretrained=bool(weights)
    )


def create_clip_tokenizer(name):
    """The tokenizer open_clip pairs with model ``name`` (CLIP's BPE tokenizer for RN50, ViT-B-32).

    Its vocabulary ships inside the open_clip wheel, so this works offline.
    """
    import open_clip

    return open_clip.get_tokenizer(name)
