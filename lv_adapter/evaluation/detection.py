"""Box AP on BDD100K as the official toolkit computes it, plus the ``det.json`` export.

:class:`DetectionEvaluator` runs pycocotools' ``COCOeval("bbox")`` over the evaluated images that
are labeled for detection. Boxes stay in detectron2's continuous convention (the dataset dicts
already hold BDD100K's inclusive boxes as ``[x1, y1, x2 + 1, y2 + 1]``), so a COCO width is
``x2 - x1``; predictions use the same convention. Crowd boxes and the ignored categories
("other person", "other vehicle", "trailer") arrive as ``iscrowd=1`` ground truth: COCOeval
matches detections on them to nothing, so they are neither true nor false positives. This is
the official toolkit's procedure, so AP, AP50 and AP75 equal its numbers.
"""
import contextlib
import io
import os

from detectron2.structures import BoxMode
from detectron2.utils.logger import create_small_table
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from lv_adapter.evaluation.base import TaskEvaluator
from lv_adapter.tasks import DETECTION
from lv_adapter.utils.io import write_json

__all__ = [
    "COCO_METRICS",
    "DetectionEvaluator",
    "coco_box_metrics",
    "ground_truth_boxes",
    "predicted_boxes",
    "scalabel_frames",
]

# The first six entries of COCOeval.stats, in its order.
COCO_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


class DetectionEvaluator(TaskEvaluator):
    """COCO-style box AP (``results["bbox"]``) over the images labeled for detection.

    ``results["bbox"]`` holds AP, AP50, AP75, APs, APm, APl and ``AP-<class>`` in percent. A
    metric without ground truth to measure (a class with no non-crowd box, a size range with no
    box) is NaN, as in detectron2's COCOEvaluator. With ``output_dir``, the predictions are
    written as Scalabel frames to ``<output_dir>/bdd100k/det.json`` (see :func:`scalabel_frames`).
    Model outputs must hold ``instances`` (``pred_boxes`` XYXY at the original resolution,
    ``scores``, ``pred_classes``).
    """

    def __init__(self, dataset_name, output_dir=None, ground_truth=None):
        super().__init__(dataset_name, DETECTION, output_dir, ground_truth)

    def reset(self):
        self._images = []

    def process(self, inputs, outputs):
        for record, output in self._labeled(inputs, outputs):
            if "instances" not in output:
                raise KeyError(
                    f"model output of image {record['image_id']!r} has no 'instances' "
                    "(a model without detection was given a detection evaluator?)"
                )
            image = {k: record[k] for k in ("image_id", "file_name", "height", "width")}
            image["gt"] = ground_truth_boxes(record)
            image["dets"] = predicted_boxes(output["instances"])
            self._images.append(image)

    def evaluate(self):
        parts = self._gather(self._images)
        if parts is None:
            return {}
        # Keyed by image_id: an image evaluated twice must not count twice.
        by_id = {image["image_id"]: image for part in parts for image in part}
        images = [by_id[image_id] for image_id in sorted(by_id)]
        self._log_coverage(len(images))
        if self._output_dir:
            path = self._export_path("det.json")
            write_json(path, scalabel_frames(images, self._classes))
            self._logger.info(f"Wrote the detections of {len(images)} images to {path}")
        results = coco_box_metrics(images, self._classes, self._logger)
        self._logger.info("Box AP (%):\n" + create_small_table(results))
        return {"bbox": results}


def ground_truth_boxes(record):
    """The labeled boxes of a dataset dict as continuous XYXY floats with class and iscrowd."""
    boxes = []
    for ann in record.get("annotations", []):
        # convert() returns XYXY_ABS boxes unchanged; its float32 math is avoided for them.
        box = BoxMode.convert(ann["bbox"], ann["bbox_mode"], BoxMode.XYXY_ABS)
        boxes.append(
            {
                "bbox": [float(v) for v in box],
                "category_id": int(ann["category_id"]),
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
        )
    return boxes


def predicted_boxes(instances):
    """The predictions of one image as continuous XYXY floats with class and score."""
    instances = instances.to("cpu")
    boxes = instances.pred_boxes.tensor.double().numpy()
    classes = instances.pred_classes.numpy()
    scores = instances.scores.numpy()
    return [
        {"bbox": box.tolist(), "category_id": int(c), "score": float(s)}
        for box, c, s in zip(boxes, classes, scores)
    ]


def coco_box_metrics(images, classes, logger):
    """Box AP metrics (percent) of evaluated images, each with ``gt`` and ``dets`` boxes, whose
    ``category_id`` indexes ``classes`` (the class names).

    Returns:
        dict: :data:`COCO_METRICS` and ``AP-<class>``; NaN where nothing can be measured.
    """
    coco_eval = COCOeval(_coco(images, "gt", classes), _coco(images, "dets", classes), "bbox")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # pycocotools prints; the log gets it instead
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    logger.info("COCOeval (bbox):\n" + printed.getvalue())
    results = {name: _percent(coco_eval.stats[i]) for i, name in enumerate(COCO_METRICS)}
    # precision: [IoU threshold, recall, class, area range, max detections]; -1 = no GT.
    precision = coco_eval.eval["precision"][:, :, :, 0, -1]
    for k, name in enumerate(classes):
        values = precision[:, :, k]
        values = values[values > -1]
        results[f"AP-{name}"] = float(values.mean() * 100) if values.size else float("nan")
    return results


def _percent(stat):
    """COCOeval reports -1 for a metric without ground truth; that becomes NaN."""
    return float(stat * 100) if stat >= 0 else float("nan")


def _coco(images, key, classes):
    """A pycocotools ``COCO`` holding the ``key`` ("gt" or "dets") boxes of ``images``.

    Built directly rather than with ``COCO.loadRes``, which fails on an empty prediction list;
    the fields are those ``loadRes`` would set. COCO ids start at 1: pycocotools takes a matched
    id of 0 for "no match". Category ids are the contiguous ids plus one.
    """
    annotations = []
    for image_index, image in enumerate(images, start=1):
        for box in image[key]:
            x1, y1, x2, y2 = box["bbox"]
            annotations.append(
                {
                    **box,
                    "id": len(annotations) + 1,
                    "image_id": image_index,
                    "category_id": box["category_id"] + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": box.get("iscrowd", 0),
                }
            )
    coco = COCO()
    coco.dataset = {
        "images": [
            {"id": i, "height": image["height"], "width": image["width"]}
            for i, image in enumerate(images, start=1)
        ],
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(classes)],
        "annotations": annotations,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def scalabel_frames(images, classes):
    """Predictions as Scalabel frames, the format of the official toolkit's ``det`` results;
    ``classes`` names the ``category_id`` values.

    One frame per image, named by the image file's base name, even without detections. Boxes
    use BDD100K's inclusive pixel convention: ``x2``/``y2`` are the continuous edges minus one.
    """
    frames = []
    for image in images:
        labels = []
        for index, det in enumerate(image["dets"]):
            x1, y1, x2, y2 = det["bbox"]
            labels.append(
                {
                    "id": str(index),
                    "category": classes[det["category_id"]],
                    "score": det["score"],
                    "box2d": {"x1": x1, "y1": y1, "x2": x2 - 1, "y2": y2 - 1},
                }
            )
        frames.append({"name": os.path.basename(image["file_name"]), "labels": labels})
    return frames
