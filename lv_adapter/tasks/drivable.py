"""The drivable-area task: BDD100K's ``labels/drivable/masks`` in the current encoding
(0 = direct, 1 = alternative, 2 = background); the 2018 layout's masks are remapped."""
import numpy as np

from lv_adapter.tasks.base import IGNORE_LABEL
from lv_adapter.tasks.masks import MaskTask

__all__ = [
    "DRIVABLE",
    "DRIVABLE_BACKGROUND",
    "DRIVABLE_CLASSES",
    "DRIVABLE_COLORS",
    "DrivableTask",
    "LEGACY_DRIVABLE_TO_CURRENT",
]

DRIVABLE = "drivable"

DRIVABLE_CLASSES = ("direct", "alternative", "background")
DRIVABLE_COLORS = ((219, 94, 86), (86, 211, 219), (0, 0, 0))
DRIVABLE_BACKGROUND = 2

# The 2018 layout (drivable_maps/labels/*_drivable_id.png) encodes 0 = background, 1 = direct,
# 2 = alternative; this table maps those ids to the current encoding.
LEGACY_DRIVABLE_TO_CURRENT = (2, 0, 1)


def _legacy_lut():
    """256-entry table of LEGACY_DRIVABLE_TO_CURRENT; every other value maps to 255. Applied
    after the range check, which holds for both encodings (ids 0..2 or 255)."""
    lut = np.full(256, IGNORE_LABEL, dtype=np.uint8)
    lut[: len(LEGACY_DRIVABLE_TO_CURRENT)] = LEGACY_DRIVABLE_TO_CURRENT
    return lut


class DrivableTask(MaskTask):
    name = DRIVABLE
    classes = DRIVABLE_CLASSES
    colors = DRIVABLE_COLORS
    class_metadata_key = "drivable_classes"
    color_metadata_key = "drivable_colors"
    label_keys = ("drivable_file_name", "drivable_legacy")
    label_source_key = "drivable_root"
    input_key = "drivable_seg"
    output_key = "drivable_seg"
    head_node = "DRIVABLE_HEAD"
    threshold_key = "DRIVABLE_THRESH"
    readable_names = {
        "direct": "direct drivable area",
        "alternative": "alternative drivable area",
    }
    legacy_key = "drivable_legacy"
    legacy_lut = _legacy_lut()
    export_name = "drivable"
    pseudo_path = "labels/drivable/masks/train"
    short_name = "drivable"
    headline_metrics = ("mIoU", "mIoU_bdd100k", "pACC")
    toolkit_task, toolkit_ground_truth, toolkit_export = (
        "drivable", "drivable/masks/val", "drivable")
    hidden_class = DRIVABLE_BACKGROUND
    draw_alpha = 0.4
    draw_area_threshold = None  # detectron2's default
    # The official drivable mIoU counts the pixels whose ground truth is direct or alternative.
    official_classes = tuple(c for c in range(len(DRIVABLE_CLASSES)) if c != DRIVABLE_BACKGROUND)

    def toolkit_pairs(self, ours, theirs):
        """The toolkit drops background ground-truth pixels before it counts, so its per-class
        IoUs are not the 3-class IoUs reported here; its mean is ``mIoU_bdd100k``."""
        return [("mIoU_bdd100k", ours["mIoU_bdd100k"], theirs["IoU"][1]["AVERAGE"])]
