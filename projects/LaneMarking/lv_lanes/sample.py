"""The sample BDD100K of ``lv_adapter.data.sample`` with lane-marking masks.

Every image of images/100k gets ``labels/lane/masks/<split>/<stem>.png`` in the official byte
encoding, made from the scene's marking map (``Scene.markings``: which painted marking, if any,
is visible at each pixel; things standing on a marking hide it).
"""
import os

import numpy as np

from lv_adapter.data.sample import SampleWriter
from lv_adapter.data.scenes.ground import MARKINGS
from lv_adapter.utils.io import write_image
from lv_lanes.encoding import BACKGROUND, CATEGORIES, DIRECTIONS, STYLES, encode

__all__ = ["LaneSampleWriter", "lane_mask_path", "markings_to_lanes", "write_sample_lanes"]


def _marking_table():
    """uint8 table: scene marking id (0 none, k: ``MARKINGS[k - 1]``) -> lane byte."""
    table = [BACKGROUND] + [int(encode(CATEGORIES.index(c), STYLES.index(s), DIRECTIONS.index(d)))
                            for c, s, d in MARKINGS]
    return np.array(table, np.uint8)


_MARKING_TO_LANE = _marking_table()


def markings_to_lanes(markings):
    """HxW scene marking ids -> HxW uint8 lane bytes (background 255)."""
    return _MARKING_TO_LANE[markings]


def lane_mask_path(root, split, stem):
    """``root/labels/lane/masks/<split>/<stem>.png`` (``root``: the bdd100k folder)."""
    return os.path.join(root, "labels", "lane", "masks", split, stem + ".png")


class LaneSampleWriter(SampleWriter):
    """:class:`~lv_adapter.data.sample.SampleWriter` that also writes a lane mask per 100k image
    (the same scenes, byte for byte)."""

    def extra_files(self, plan):
        return [lane_mask_path("", split, plan.stem) for image_set, split in plan.copies
                if image_set == "100k"]

    def write_extra(self, scene, plan):
        lanes = markings_to_lanes(scene.markings)
        for image_set, split in plan.copies:
            if image_set == "100k":
                write_image(lane_mask_path(self.root, split, plan.stem), lanes)


def write_sample_lanes(out_dir, num_images=60, width=1280, height=720, seed=0):
    """Write a sample BDD100K with lane masks under ``out_dir/bdd100k``; the summary of
    :func:`lv_adapter.data.sample.write_sample_bdd100k`."""
    writer = LaneSampleWriter(out_dir, num_images, width, height, seed)
    for index in range(len(writer)):
        writer.write_scene(index)
    return writer.finish()
