"""Frozen text encoders of the LV-Adapter, behind ``TEXT_ENCODER_REGISTRY``.

Importing this package registers every encoder; open_clip and transformers are imported only when
an encoder of theirs is built.
"""
from lv_adapter.modeling.adapter.text.base import (
    TEXT_ENCODER_REGISTRY,
    FrozenTextEncoder,
    build_text_encoder,
)
from lv_adapter.modeling.adapter.text.hf_encoder import HFTextEncoder
from lv_adapter.modeling.adapter.text.open_clip_encoder import OpenCLIPTextEncoder

__all__ = [
    "TEXT_ENCODER_REGISTRY",
    "FrozenTextEncoder",
    "HFTextEncoder",
    "OpenCLIPTextEncoder",
    "build_text_encoder",
]
