"""BDD100K datasets. Importing this package registers the official names under
``$DETECTRON2_DATASETS/bdd100k`` (default ``./datasets``); registration reads no file."""
import os

from lv_adapter.data.datasets.bdd100k import load_bdd100k, merge_by_image, register_bdd100k
from lv_adapter.data.datasets.builtin import register_all_bdd100k

__all__ = ["load_bdd100k", "merge_by_image", "register_bdd100k", "register_all_bdd100k"]

register_all_bdd100k(os.getenv("DETECTRON2_DATASETS", "datasets"))
