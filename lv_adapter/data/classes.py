"""Which classes each task has, seen from a config: the class names of the config's datasets
(their metadata, each task's defaults, BDD100K's, when it names none).

A leaf module (detectron2's catalog and the task registry only), so that the data layer, the
config checks and the model all read class names from one place; a head's class count is its
task's ``num_classes(cfg)`` (``lv_adapter.tasks``).
"""
from detectron2.data import DatasetCatalog, MetadataCatalog

from lv_adapter.tasks import task_classes

__all__ = ["config_metadata", "config_task_classes"]


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
