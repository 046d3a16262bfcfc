"""Which classes each task has, seen from a config: the key that sets each head's class count, and
the class names of the config's datasets (their metadata, BDD100K's by default).

A leaf module (detectron2's catalog and the category tables only), so that the data layer, the
config checks and the model all read class counts and names from one place.
"""
from detectron2.data import MetadataCatalog

from lv_adapter.data.datasets.categories import DETECTION, DRIVABLE, SEMANTIC, task_classes

__all__ = ["NUM_CLASSES_KEYS", "config_task_classes", "head_num_classes"]

# The config key that gives each task's head its number of classes (every detection head reads
# the Sparse R-CNN node's, so that one key sets it whichever head is chosen).
NUM_CLASSES_KEYS = {
    DETECTION: ("SPARSE_RCNN", "NUM_CLASSES"),
    SEMANTIC: ("SEMANTIC_HEAD", "NUM_CLASSES"),
    DRIVABLE: ("DRIVABLE_HEAD", "NUM_CLASSES"),
}


def head_num_classes(cfg, task):
    """The number of classes of ``task``'s head (``MODEL.<node>.NUM_CLASSES``)."""
    node, key = NUM_CLASSES_KEYS[task]
    return cfg.MODEL[node][key]


def config_task_classes(cfg, task):
    """The class names of ``task`` in the metadata of the config's first training dataset (the
    first test dataset when it trains on none); BDD100K's when that dataset has none."""
    names = list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST)
    metadata = MetadataCatalog.get(names[0]) if names and names[0] in MetadataCatalog else None
    return task_classes(metadata, task)
