"""The semantic-segmentation task: BDD100K's ``sem_seg`` masks of the 19 Cityscapes train ids."""
from lv_adapter.tasks.masks import MaskTask

__all__ = ["SEMANTIC", "SEM_SEG_CLASSES", "SEM_SEG_COLORS", "SemanticTask"]

SEMANTIC = "semantic"

SEM_SEG_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
SEM_SEG_COLORS = (
    (128, 64, 128),
    (244, 35, 232),
    (70, 70, 70),
    (102, 102, 156),
    (190, 153, 153),
    (153, 153, 153),
    (250, 170, 30),
    (220, 220, 0),
    (107, 142, 35),
    (152, 251, 152),
    (70, 130, 180),
    (220, 20, 60),
    (255, 0, 0),
    (0, 0, 142),
    (0, 0, 70),
    (0, 60, 100),
    (0, 80, 100),
    (0, 0, 230),
    (119, 11, 32),
)


class SemanticTask(MaskTask):
    name = SEMANTIC
    classes = SEM_SEG_CLASSES
    colors = SEM_SEG_COLORS
    # detectron2's own keys, so its evaluators and Visualizer read the same names.
    class_metadata_key = "stuff_classes"
    color_metadata_key = "stuff_colors"
    label_keys = ("sem_seg_file_name",)
    label_source_key = "sem_seg_root"
    input_key = "sem_seg"
    output_key = "sem_seg"
    head_node = "SEMANTIC_HEAD"
    threshold_key = "SEM_SEG_THRESH"
    export_name = "sem_seg"
    pseudo_path = "labels/sem_seg/masks/train"
    short_name = "sem"
    headline_metrics = ("mIoU", "pACC")
    toolkit_task, toolkit_ground_truth, toolkit_export = "sem_seg", "sem_seg/masks/val", "sem_seg"
    panel = 1  # the right panel: a full-scene overlay, beside the boxes and drivable area

    def toolkit_pairs(self, ours, theirs):
        """mIoU and IoU per class."""
        pairs = [("mIoU", ours["mIoU"], theirs["IoU"][1]["AVERAGE"])]
        return pairs + [(f"IoU-{c}", ours[f"IoU-{c}"], v) for c, v in theirs["IoU"][0].items()]
