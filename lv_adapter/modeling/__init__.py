"""Models: importing this registers the meta-architecture and the adapters."""
from lv_adapter.modeling.adapter import ADAPTER_REGISTRY, build_adapter  # noqa: F401
from lv_adapter.modeling.meta_arch import MultiTaskModel  # noqa: F401
