from lv_adapter.modeling.adapter.build import ADAPTER_REGISTRY, IdentityAdapter, build_adapter

__all__ = ["ADAPTER_REGISTRY", "IdentityAdapter", "build_adapter"]
