from lv_adapter.modeling.adapter.build import ADAPTER_REGISTRY, IdentityAdapter, build_adapter
from lv_adapter.modeling.adapter.lv_adapter import LVAdapter

__all__ = ["ADAPTER_REGISTRY", "IdentityAdapter", "LVAdapter", "build_adapter"]
