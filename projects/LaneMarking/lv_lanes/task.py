"""The lane-marking task: BDD100K's ``labels/lane/masks`` as a mask task of 33 classes.

Ground-truth files are in the official byte encoding (:mod:`lv_lanes.encoding`); the model sees
class ids (the 32 (category, style, direction) combinations, then background). Pseudo labels are
class-id PNGs like every other mask task's (255 = the teacher is unsure: the byte encoding has no
"ignore" value), so :meth:`LaneTask.read_label` reads a file by where it comes from.
"""
import numpy as np

from lv_adapter.data.pseudo_labels import PSEUDO_TASKS_KEY
from lv_adapter.data.readers import read_label_mask
from lv_adapter.tasks import IGNORE_LABEL, MaskTask
from lv_adapter.utils.visualizer import label_font_size
from lv_lanes.encoding import BACKGROUND_CLASS, CATEGORIES, CLASSES, to_class_ids
from lv_lanes.files import read_lane_mask
from lv_lanes.metric import flat_toolkit_table

__all__ = ["LANE", "LANE_CATEGORY_COLORS", "LaneTask"]

LANE = "lane"

# One colour per category, vivid on asphalt (white and yellow paint would vanish on the image).
LANE_CATEGORY_COLORS = {
    "crosswalk": (0, 190, 255),
    "double other": (170, 80, 255),
    "double white": (255, 90, 200),
    "double yellow": (255, 150, 0),
    "road curb": (140, 255, 60),
    "single other": (120, 120, 255),
    "single white": (255, 50, 50),
    "single yellow": (255, 235, 0),
}
_DASH_PX = 5  # length of a drawn dash and of the gap after it, in image pixels


class LaneTask(MaskTask):
    """Lane marking (see the module doc): every hook of a mask task, with the official
    encoding read and drawn by its categories (dashed styles drawn dashed)."""

    name = LANE
    classes = CLASSES
    colors = tuple(LANE_CATEGORY_COLORS[c] for c in CATEGORIES) * 4 + ((0, 0, 0),)
    class_metadata_key = "lane_classes"
    color_metadata_key = "lane_colors"
    label_keys = ("lane_file_name",)
    label_source_key = "lane_root"
    input_key = "lane_seg"
    output_key = "lane_seg"
    head_node = "LANE_HEAD"
    threshold_key = "LANE_THRESH"
    export_name = "lane"
    pseudo_path = "labels/lane/masks/train"
    short_name = "lane"
    headline_metrics = ("F1_pix1", "F1_pix2", "F1_pix5")
    toolkit_task, toolkit_ground_truth, toolkit_export = "lane_mark", "lane/masks/val", "lane"
    hidden_class = BACKGROUND_CLASS
    panel = 2  # a panel of its own: thin lines stay readable without the other overlays
    readable_names = {c: c.replace(" parallel", "").replace(" vertical", " across the road")
                      for c in CLASSES[:BACKGROUND_CLASS]}

    @property
    def result_key(self):
        """The evaluator's results key: ``lane``."""
        return LANE

    def read_label(self, dataset_dict, image_shape, num_classes=None):
        """HxW uint8 class ids of one image: ground truth decoded from the official bytes, a
        pseudo label as written (class ids, 255 unsure)."""
        path = dataset_dict[self.label_keys[0]]
        if self.name in dataset_dict.get(PSEUDO_TASKS_KEY, ()):
            return read_label_mask(path, self.name, image_shape, num_classes=num_classes)
        return to_class_ids(read_lane_mask(path, image_shape))

    def build_evaluator(self, dataset_name, output_dir=None, ground_truth=None):
        """The official lane benchmark (results key ``lane``), exports in the byte encoding."""
        from lv_lanes.evaluator import LaneEvaluator

        return LaneEvaluator(dataset_name, self.name, output_dir=output_dir,
                             ground_truth=ground_truth)

    def toolkit_pairs(self, ours, theirs):
        """Every F-score of the lane benchmark (48: values, sub-tasks, overall at 1, 2, 5 px)."""
        theirs = flat_toolkit_table(theirs)
        return [(key, ours[key], theirs[key]) for key in sorted(theirs)]

    def drawable_from_label(self, dataset_dict):
        """The HxW class ids of the image's lane mask (checked as the mapper checks it)."""
        if self.name not in dataset_dict.get("labeled_tasks", ()):
            return None
        return self.read_label(dataset_dict, (dataset_dict["height"], dataset_dict["width"]))

    def draw(self, vis, drawable, metadata):
        """Lane pixels coloured by category; dashed classes drawn as dashes along the lane
        (along the rows for parallel lanes, along the columns for lanes across the road)."""
        ids = np.asarray(drawable)
        rgba = np.zeros((*ids.shape, 4), np.float32)
        colors = np.asarray(self.colors_of(metadata), np.float32) / 255
        lane = (ids != BACKGROUND_CLASS) & (ids != IGNORE_LABEL) & (ids < len(colors))
        rows, cols = np.indices(ids.shape)
        dashed, across = (ids >> 3) & 1 == 1, (ids >> 4) & 1 == 1
        gap = np.where(across, cols, rows) // _DASH_PX % 2 == 1
        shown = lane & ~(dashed & gap)
        rgba[shown, :3] = colors[ids[shown]]
        rgba[shown, 3] = 0.9
        height, width = ids.shape
        vis.output.ax.imshow(rgba, extent=(0, width, height, 0), interpolation="nearest")
        self._name_categories(vis, ids, lane, colors)

    def _name_categories(self, vis, ids, lane, colors):
        """Each category's name once, on a pixel of it low in the picture (near the camera),
        moved up while it would cover a name drawn before."""
        size, placed = label_font_size(vis) * 0.8, []
        for category, name in enumerate(CATEGORIES):
            rows, cols = np.nonzero(lane & (ids & 7 == category))
            if not rows.size:
                continue
            pick = np.argsort(rows)[int(0.8 * (rows.size - 1))]  # 80 % of the way down
            x, y = float(cols[pick]), float(rows[pick])
            while any(abs(x - px) < 6 * size and abs(y - py) < 1.5 * size for px, py in placed):
                y -= 1.5 * size
            placed.append((x, y))
            vis.draw_text(name, (x, y), color=colors[category], font_size=size)
