"""Models: importing this registers the meta-architecture, the adapters and the backbones."""
from lv_adapter.modeling import backbone  # noqa: F401  (registers the CLIP backbone)
from lv_adapter.modeling.adapter import ADAPTER_REGISTRY, build_adapter  # noqa: F401
from lv_adapter.modeling.meta_arch import MultiTaskModel  # noqa: F401
