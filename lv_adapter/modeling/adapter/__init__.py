from lv_adapter.modeling.adapter.build import ADAPTER_REGISTRY, IdentityAdapter, build_adapter
from lv_adapter.modeling.adapter.lv_adapter import LVAdapter
from lv_adapter.modeling.adapter.prompts import TaskPrompts, build_task_prompts
from lv_adapter.modeling.adapter.text import (
    TEXT_ENCODER_REGISTRY,
    HFTextEncoder,
    OpenCLIPTextEncoder,
    build_text_encoder,
)

__all__ = [
    "ADAPTER_REGISTRY",
    "HFTextEncoder",
    "IdentityAdapter",
    "LVAdapter",
    "OpenCLIPTextEncoder",
    "TEXT_ENCODER_REGISTRY",
    "TaskPrompts",
    "build_adapter",
    "build_task_prompts",
    "build_text_encoder",
]
