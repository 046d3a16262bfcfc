"""The detection task: boxes of BDD100K's 10 ``det_20`` classes, by Sparse R-CNN by default.

Dataset dicts hold ``annotations`` (detectron2's format, XYXY_ABS boxes); the mapper turns them
into ``instances`` (``gt_boxes``, ``gt_classes``; crowd and ignore boxes are not targets); the
model returns ``instances`` (``pred_boxes``, ``scores``, ``pred_classes``).
"""
import collections
import json
import os

import numpy as np
import torch
from detectron2.data import detection_utils as utils
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances

from lv_adapter.tasks.base import SUMMARY_DECIMALS, WEAK_SHARE, Task
from lv_adapter.utils.io import write_json
from lv_adapter.tasks.semantic import SEM_SEG_CLASSES, SEM_SEG_COLORS

__all__ = ["DET_CLASSES", "DET_COLORS", "DETECTION", "DetectionTask", "detection_frame"]

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


_CROWD_COLOR = (0.6, 0.6, 0.6)  # ignore regions are drawn grey
# Pseudo labels: one part file per image under <root>/.parts/detection/, merged into the det_20
# file at the end (finish_pseudo_labels), then removed.
PARTS_FOLDER = ".parts"
# Decimals kept in the JSON: far below a pixel and below any useful score difference, and the
# file is a third the size of one with every float digit.
BOX_DECIMALS, SCORE_DECIMALS = 3, 4


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
    pseudo_path = "labels/det_20/det_train.json"
    result_key = "bbox"
    short_name = "det"
    headline_metrics = ("AP", "AP50", "AP75")
    toolkit_task, toolkit_ground_truth, toolkit_export = "det", "det_20/det_val.json", "det.json"

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

    def export_names(self):
        return ["boxes", "scores", "classes"]

    def to_export_tensors(self, result):
        """[N, 4] XYXY boxes at the network input size, [N] scores, [N] classes."""
        return result.pred_boxes.tensor, result.scores, result.pred_classes

    def from_export_tensors(self, tensors, image_size):
        boxes, scores, classes = tensors
        return Instances(tuple(image_size), pred_boxes=Boxes(boxes), scores=scores,
                         pred_classes=classes)

    def build_evaluator(self, dataset_name, output_dir=None, ground_truth=None):
        """COCO-style box AP with BDD100K's crowd and ignore regions (results key ``bbox``)."""
        from lv_adapter.evaluation.detection import DetectionEvaluator  # evaluation reads tasks

        return DetectionEvaluator(dataset_name, output_dir=output_dir, ground_truth=ground_truth)

    def toolkit_pairs(self, ours, theirs):
        """AP, AP50, AP75, APs, APm, APl and AP per class (the toolkit's "OVERALL" row)."""
        names = ["AP", "AP50", "AP75", "APs", "APm", "APl"]
        pairs = [(n, ours[n], theirs[n][1]["OVERALL"]) for n in names]
        return pairs + [(f"AP-{c}", ours[f"AP-{c}"], v) for c, v in theirs["AP"][0].items()]

    def pseudo_label_file(self, root, image_id):
        return os.path.join(root, PARTS_FOLDER, self.name, f"{image_id}.json")

    def read_pseudo_labels(self, path, handler):
        """The frames of the det_20 file ``path``, each label with its ``score``."""
        from lv_adapter.data.datasets.det_json import read_detection_frames

        frames, _ = read_detection_frames(path, handler, with_scores=True)
        return {stem: {"annotations": annotations} for stem, (_, annotations) in frames.items()}

    def write_pseudo_label(self, path, record, output, threshold):
        """A part file ``{"frame": det_20 frame, "boxes_below_one_pixel": n}``."""
        name = os.path.basename(record["file_name"])
        frame, too_small = detection_frame(name, output[self.output_key], threshold)
        write_json(path, {"frame": frame, "boxes_below_one_pixel": too_small})

    def pseudo_work_paths(self, root):
        """The per-image parts (one frame each) waiting for the merge."""
        return [os.path.join(root, PARTS_FOLDER, self.name)]

    def finish_pseudo_labels(self, root, image_ids):
        """Merge the parts into the det_20 file (frames sorted by name); return box counts."""
        from lv_adapter.data.pseudo_labels import pseudo_label_paths

        frames, too_small = [], 0
        for image_id in image_ids:
            part = _read_part(self.pseudo_label_file(root, image_id))
            frames.append(part["frame"])
            too_small += part["boxes_below_one_pixel"]
        frames.sort(key=lambda frame: frame["name"])
        write_json(pseudo_label_paths(root)[self.name], frames)
        per_class = collections.Counter(lab["category"] for fr in frames for lab in fr["labels"])
        boxes = sum(per_class.values())
        return {
            "boxes": boxes,
            "boxes_per_image": round(boxes / max(len(frames), 1), SUMMARY_DECIMALS),
            "images_without_boxes": sum(not frame["labels"] for frame in frames),
            "boxes_per_class": {name: per_class[name] for name in self.classes},
            "boxes_below_one_pixel": too_small,
        }

    def weak_pseudo_label_warnings(self, summary, key):
        """An image with a pseudo frame but no box trains the head that it holds no object; a
        weak teacher (or a threshold above its scores) writes such frames for most images."""
        empty = summary["images_without_boxes"]
        if empty / max(summary.get("images", 0), 1) > WEAK_SHARE:
            return [f"{empty} of {summary['images']} images got no detection box at or above "
                    f"{key}: the student will learn that they hold no object. Train the "
                    f"teacher longer or lower {key} (its scores are in the teacher's "
                    f"evaluation export, inference/*/bdd100k/det.json)"]
        return []

    def drawable_from_label(self, dataset_dict):
        """``{"boxes": [N, 4] XYXY_ABS, "classes": [N], "crowd": [N] bool}``."""
        if self.name not in dataset_dict.get("labeled_tasks", ()):
            return None
        annos = dataset_dict["annotations"]
        return {
            "boxes": [a["bbox"] for a in annos],
            "classes": [a["category_id"] for a in annos],
            "crowd": [bool(a.get("iscrowd", 0)) for a in annos],
        }

    def drawable_from_output(self, outputs, score_threshold=0.5):
        """The boxes scored at least ``score_threshold``, with ``scores``."""
        if self.output_key not in outputs:
            return None
        instances = outputs[self.output_key].to("cpu")
        instances = instances[instances.scores >= score_threshold]
        return {
            "boxes": instances.pred_boxes.tensor.numpy(),
            "classes": instances.pred_classes.tolist(),
            "scores": instances.scores.tolist(),
        }

    def draw(self, vis, drawable, metadata):
        """Boxes labeled with their class (and score), in their class colour; crowd and ignore
        regions grey, marked "(ignore)"."""
        if len(drawable["boxes"]) == 0:
            return
        names, colors = self.classes_of(metadata), self.colors_of(metadata)
        scores = drawable.get("scores")
        crowd = drawable.get("crowd", [False] * len(drawable["boxes"]))
        labels, box_colors = [], []
        for i, (cls, is_crowd) in enumerate(zip(drawable["classes"], crowd)):
            text = names[cls] + (" (ignore)" if is_crowd else "")
            labels.append(text if scores is None else f"{text} {scores[i]:.2f}")
            box_colors.append(_CROWD_COLOR if is_crowd else tuple(c / 255 for c in colors[cls]))
        vis.overlay_instances(
            boxes=np.asarray(drawable["boxes"]), labels=labels, assigned_colors=box_colors
        )


def detection_frame(name, instances, threshold):
    """One ``det_20`` frame from a teacher's ``Instances``: the boxes scored at least
    ``threshold``; ``box2d`` in BDD100K's inclusive pixel indices (a continuous ``(x1, y1, x2,
    y2)`` is written as ``x2 - 1, y2 - 1``, the inverse of the loader's ``+ 1``), so a box under
    one pixel wide or high has no such form and is left out (counted).

    Args:
        name (str): the frame's image file name (``<stem>.jpg``).
        instances (Instances): ``pred_boxes`` (XYXY, original resolution), ``scores``,
            ``pred_classes`` (0..9).
        threshold (float): lowest score kept.

    Returns:
        tuple[dict, int]: the frame (labels by decreasing score) and the number of boxes above
        the threshold left out for being under one pixel wide or high.
    """
    instances = instances.to("cpu")
    boxes = instances.pred_boxes.tensor.double().numpy()
    scores = instances.scores.double().numpy()
    classes = instances.pred_classes.numpy()
    labels, too_small = [], 0
    for index in np.argsort(-scores, kind="stable"):
        if scores[index] < threshold:
            continue
        x1, y1, x2, y2 = boxes[index].tolist()
        if x2 - 1 < x1 or y2 - 1 < y1:
            too_small += 1
            continue
        box2d = dict(zip(("x1", "y1", "x2", "y2"), (x1, y1, x2 - 1, y2 - 1)))
        labels.append({
            "id": str(len(labels)),
            "category": DET_CLASSES[int(classes[index])],
            "box2d": {k: round(v, BOX_DECIMALS) for k, v in box2d.items()},
            "score": round(float(scores[index]), SCORE_DECIMALS),
        })
    return {"name": name, "labels": labels}, too_small


def _read_part(path):
    """One image's part file: ``{"frame": ..., "boxes_below_one_pixel": n}``."""
    try:
        with open(path, encoding="utf-8") as f:
            part = json.load(f)
        if not isinstance(part, dict) or not {"frame", "boxes_below_one_pixel"} <= part.keys():
            raise ValueError("not a part written by this tool")
        return part
    except (ValueError, OSError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: unreadable detection part ({e}); delete it and run the same "
                         "command again: its image is labeled again") from None
