"""Where pseudo labels live: the contract between the generator and the loader.

A pseudo-label root mirrors BDD100K's own label layout, so that the BDD100K loader and readers
read pseudo labels exactly as they read ground truth::

    labels/det_20/det_train.json            det_20 frames; each label has a "score"
    labels/sem_seg/masks/train/<stem>.png    label ids 0..18, 255 = not confident
    labels/drivable/masks/train/<stem>.png   label ids 0..2, 255 = not confident
    summary_<task>.json                      written last: that task's labels are complete

The default root of a training setting is ``<datasets root>/bdd100k/pseudo/<setting>``.

Dataset dicts that carry pseudo labels name them in ``pseudo_tasks`` (a subset of
``labeled_tasks``); the mapper passes it on to the model input.
"""
import os

from lv_adapter.data.datasets.categories import DETECTION, DRIVABLE, SEMANTIC, TASKS

__all__ = ["PSEUDO_TASKS_KEY", "default_pseudo_root", "pseudo_label_paths", "summary_path"]

# Dataset-dict and model-input key: the labeled tasks whose labels are a teacher's, not people's.
PSEUDO_TASKS_KEY = "pseudo_tasks"


def default_pseudo_root(datasets_root, setting):
    """``<datasets_root>/bdd100k/pseudo/<setting>``."""
    return os.path.join(datasets_root, "bdd100k", "pseudo", setting)


def pseudo_label_paths(pseudo_root):
    """The label file (detection) or folder (segmentation) of each task under ``pseudo_root``.

    Returns:
        dict[str, str]: task -> path, for every task of ``TASKS``.
    """
    labels = os.path.join(pseudo_root, "labels")
    return {
        DETECTION: os.path.join(labels, "det_20", "det_train.json"),
        SEMANTIC: os.path.join(labels, "sem_seg", "masks", "train"),
        DRIVABLE: os.path.join(labels, "drivable", "masks", "train"),
    }


def summary_path(pseudo_root, task):
    """The summary a finished generation writes last; its presence marks ``task`` complete."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; tasks are {TASKS}")
    return os.path.join(pseudo_root, f"summary_{task}.json")
