"""The detection task: boxes of BDD100K's 10 ``det_20`` classes, by Sparse R-CNN by default.

Dataset dicts hold ``annotations`` (detectron2's format, XYXY_ABS boxes); the mapper turns them
into ``instances`` (``gt_boxes``, ``gt_classes``; crowd and ignore boxes are not targets); the
model returns ``instances`` (``pred_boxes``, ``scores``, ``pred_classes``).
"""
import torch
from detectron2.data import detection_utils as utils
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances

from lv_adapter.tasks.base import Task
from lv_adapter.tasks.semantic import SEM_SEG_CLASSES, SEM_SEG_COLORS

__all__ = ["DET_CLASSES", "DET_COLORS", "DETECTION", "DetectionTask"]

DETECTION = "detection"

# The official det_20 order.
DET_CLASSES = (
    "pedestrian",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
    "traffic light",
    "traffic sign",
)
# Each class in the colour of the semantic class it is (Cityscapes'), so boxes and semantic
# overlays agree; det_20's "pedestrian" is the semantic "person".
DET_COLORS = tuple(
    SEM_SEG_COLORS[SEM_SEG_CLASSES.index("person" if name == "pedestrian" else name)]
    for name in DET_CLASSES
)


class DetectionTask(Task):
    name = DETECTION
    classes = DET_CLASSES
    colors = DET_COLORS
    # detectron2's own keys, so its evaluators and Visualizer read the same names.
    class_metadata_key = "thing_classes"
    color_metadata_key = "thing_colors"
    label_keys = ("annotations",)
    label_source_key = "json_file"
    input_key = "instances"
    output_key = "instances"
    # Every detection head reads its class count here, so that one key sets it whichever head.
    head_node = "SPARSE_RCNN"
    default_head = "SparseRCNNHead"
    threshold_key = "DET_SCORE_THRESH"

    def map_label(self, label, dataset_dict, transforms, image_shape):
        """:class:`Instances` of the non-crowd boxes, transformed, clipped, empty ones removed
        (no boxes when the image is not labeled for detection)."""
        annos = []
        if self.name in dataset_dict.get("labeled_tasks", ()):
            annos = [
                utils.transform_instance_annotations(dict(obj), transforms, image_shape)
                for obj in dataset_dict["annotations"]
                if obj.get("iscrowd", 0) == 0
            ]
        if not annos:
            instances = Instances(image_shape)
            instances.gt_boxes = Boxes(torch.zeros((0, 4)))
            instances.gt_classes = torch.zeros((0,), dtype=torch.int64)
            return instances
        return utils.filter_empty_instances(utils.annotations_to_instances(annos, image_shape))

    def targets(self, batched_inputs, images):
        """Per image ``{"labels": [T] long, "boxes": [T, 4] absolute XYXY}`` on the batch's
        device."""
        device = images.tensor.device
        return [
            {
                "labels": x[self.input_key].gt_classes.to(device),
                "boxes": x[self.input_key].gt_boxes.tensor.to(device),
            }
            for x in batched_inputs
        ]

    def run_head(self, head, features, images, targets):
        # Detection heads clip and scale boxes, so they take each image's size.
        return head(features, images.image_sizes, targets)

    def postprocess(self, result, image_size, height, width):
        return detector_postprocess(result, height, width)

    def build_evaluator(self, dataset_name, output_dir=None, ground_truth=None):
        """COCO-style box AP with BDD100K's crowd and ignore regions (results key ``bbox``)."""
        from lv_adapter.evaluation.detection import DetectionEvaluator  # evaluation reads tasks

        return DetectionEvaluator(dataset_name, output_dir=output_dir, ground_truth=ground_truth)
