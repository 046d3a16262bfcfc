"""BDD100K's lane-marking datasets, and lanes in the multi-task sets.

* ``bdd100k_lane_{train,val}``: images/100k + ``labels/lane/masks/{split}/<stem>.png``;
* the core's multi-task sets (``bdd100k_multitask_{train,val}``, the training settings and their
  pseudo-label variants) merge these labels by image (lanes are labeled on the 100k images, which
  carry detection and drivable labels too), through
  :func:`lv_adapter.data.datasets.builtin.add_task_source`.

Reads no file at registration.
"""
import functools
import os

from lv_adapter.data.datasets.bdd100k import load_bdd100k, register_loader
from lv_adapter.data.datasets.builtin import add_task_source, official_paths
from lv_lanes.task import LANE

__all__ = ["lane_root", "load_lanes", "register_all_lanes"]


def lane_root(root, split):
    """``<root>/bdd100k/labels/lane/masks/<split>``: the lane masks of ``split``."""
    return os.path.join(root, "bdd100k", "labels", "lane", "masks", split)


def load_lanes(root, split):
    """The lane-labeled dataset dicts of ``split`` (``lane_file_name`` names each mask)."""
    images = official_paths(root, split)["images_100k"]
    return load_bdd100k(images, task_masks={LANE: lane_root(root, split)})


def register_all_lanes(root):
    """Register ``bdd100k_lane_{train,val}`` for the datasets root ``root`` and add lanes to
    the multi-task sets."""
    for split in ("train", "val"):
        register_loader(f"bdd100k_lane_{split}", functools.partial(load_lanes, root, split),
                        [LANE], image_root=official_paths(root, split)["images_100k"],
                        lane_root=lane_root(root, split))
    add_task_source(LANE, load_lanes)
