"""LV-Adapter for Detectron2: multi-task driving perception with language-guided adaptation.

Importing this package registers the BDD100K datasets and everything the configs name.
"""
from lv_adapter import compat  # noqa: F401  (first: makes detectron2.layers importable)
from lv_adapter import data  # noqa: F401  (registers the BDD100K datasets)
from lv_adapter.config import add_lv_adapter_config, build_config  # noqa: F401
from lv_adapter import modeling  # noqa: F401  (registers MultiTaskModel and the adapters)
