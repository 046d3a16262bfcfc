from lv_adapter.modeling.meta_arch.multitask import MultiTaskModel

__all__ = ["MultiTaskModel"]
