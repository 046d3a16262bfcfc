"""Which classes each task has, seen from a config: the key that sets each head's class count, and
the class names of the config's datasets (their metadata, BDD100K's by default).

A leaf module (detectron2's catalog and the category tables only), so that the data layer, the
config checks and the model all read class counts and names from one place.
"""
from detectron2.data import DatasetCatalog, MetadataCatalog

from lv_adapter.data.datasets.categories import DETECTION, DRIVABLE, SEMANTIC, task_classes

__all__ = ["NUM_CLASSES_KEYS", "config_metadata", "config_task_classes", "head_num_classes"]

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


def config_metadata(cfg):
    """The metadata of the config's first training dataset (the first test dataset when it trains
    on none), or None when it names no dataset.

    Raises KeyError when that dataset is not registered: its classes are unknown, and taking
    BDD100K's instead would name another dataset's classes silently (a project's datasets are
    registered by importing its package: its train_net.py does, tools take ``--project``).
    """
    names = list(cfg.DATASETS.TRAIN) or list(cfg.DATASETS.TEST)
    if not names:
        return None
    if names[0] not in DatasetCatalog:
        raise KeyError(
            f"DATASETS: {names[0]!r} is not registered, so its classes are unknown. lv_adapter "
            "registers BDD100K's datasets; a project's are registered by its package (run the "
            "project's train_net.py, or give the tool --project projects/<Name>)"
        )
    return MetadataCatalog.get(names[0])


def config_task_classes(cfg, task):
    """The class names of ``task`` in :func:`config_metadata` (BDD100K's when the config names
    no dataset or its metadata names no classes)."""
    return task_classes(config_metadata(cfg), task)
