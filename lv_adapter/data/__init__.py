"""Data: BDD100K datasets, splits, sample scenes, the multi-task mapper."""
from lv_adapter.data.datasets import register_bdd100k  # noqa: F401  (registers official names)
from lv_adapter.data.mapper import MultiTaskDatasetMapper  # noqa: F401
