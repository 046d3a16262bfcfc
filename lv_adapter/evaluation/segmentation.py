"""mIoU and pixel accuracy of semantic and drivable-area segmentation, plus the PNG export.

:class:`SegmentationEvaluator` serves every mask task (``lv_adapter.tasks.MaskTask``: its
registration holds what differs: result key, mask key, export folder, official classes). It sums
one KxK confusion matrix over the images labeled for its task (rows: ground truth, columns:
prediction; ground-truth pixels of 255 are ignored) and derives every metric from it:

* ``IoU-<class>`` = TP / (GT + P - TP), NaN for a class absent from the ground truth (the
  official toolkit reports 0 there, but leaves it out of the mean, as here);
* ``mIoU``: mean IoU over the classes present in the ground truth (official convention);
* ``pACC`` = correct / valid pixels; ``mACC``: mean of TP / GT over the present classes;
* drivable only, ``mIoU_bdd100k`` (the official drivable metric): only pixels whose ground truth
  is direct or alternative count; for those two classes IoU = TP / (GT + P - TP) with P counted
  on those pixels only, averaged over the ones present. Background errors on background ground
  truth pixels therefore don't lower it, while they do lower the 3-class ``mIoU``.

All values are in percent.
"""
import cv2
import numpy as np
import torch
from detectron2.utils.logger import create_small_table

from lv_adapter.data.readers import read_label_mask
from lv_adapter.evaluation.base import TaskEvaluator, file_stem
from lv_adapter.tasks import IGNORE_LABEL, TASK_REGISTRY, MaskTask, mask_task_names
from lv_adapter.utils.io import atomic_path

__all__ = [
    "SegmentationEvaluator",
    "confusion_matrix",
    "encode_png",
    "official_drivable_miou",
    "segmentation_metrics",
]


class SegmentationEvaluator(TaskEvaluator):
    """Confusion-matrix metrics of one segmentation task (module doc).

    Ground truth is read with :func:`~lv_adapter.data.readers.read_label_mask` from the dataset
    dict of each image (looked up by ``image_id``). The model output holds a ``[K, H, W]`` score
    map at the image's original resolution under the task's ``output_key``; its argmax is
    the prediction. With ``output_dir`` the predictions are written as uint8 label-id PNGs to
    ``<output_dir>/bdd100k/<export_name>/<stem>.png`` by the main process.

    Args:
        dataset_name (str): registered dataset.
        task (str): a mask task: "semantic" (results key ``sem_seg``), "drivable"
            (``drivable_seg``), or a project's.
        output_dir (str or None): export folder; None writes nothing.
        ground_truth (GroundTruth or None): shared ground truth of ``dataset_name``.
    """

    def __init__(self, dataset_name, task, output_dir=None, ground_truth=None):
        self._spec = TASK_REGISTRY.get(task) if task in TASK_REGISTRY else None
        if not isinstance(self._spec, MaskTask):
            raise ValueError(f"no segmentation task {task!r}; choose one of "
                             f"{sorted(mask_task_names())}")
        super().__init__(dataset_name, task, output_dir, ground_truth)

    def reset(self):
        num_classes = len(self._classes)
        self._confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
        self._num_images = 0
        self._encoded = []  # (file stem, PNG bytes): small enough to gather, unlike raw masks

    def process(self, inputs, outputs):
        for record, output in self._labeled(inputs, outputs):
            prediction = self._prediction(record, output)
            gt = self._read_gt(record)
            if prediction.shape != gt.shape:
                raise ValueError(
                    f"{self._task} prediction of image {record['image_id']!r} "
                    f"({record['file_name']}) is {prediction.shape[1]}x{prediction.shape[0]} "
                    f"(WxH) but its ground truth is {gt.shape[1]}x{gt.shape[0]}; outputs must "
                    "be at the original image resolution"
                )
            self._confusion += confusion_matrix(gt, prediction, len(self._classes))
            self._num_images += 1
            if self._output_dir:
                self._encoded.append((file_stem(record["file_name"]), encode_png(prediction)))

    def _read_gt(self, record):
        """The image's validated ground-truth mask, in the current encoding."""
        legacy = bool(self._spec.legacy_key and record.get(self._spec.legacy_key))
        return read_label_mask(
            record[self._spec.label_keys[0]],
            self._task,
            (record["height"], record["width"]),
            legacy_drivable=legacy,
            num_classes=len(self._classes),
        )

    def _prediction(self, record, output):
        """The HxW uint8 argmax of the task's score map, checked for its number of classes."""
        key, num_classes = self._spec.output_key, len(self._classes)
        scores = output.get(key)
        if scores is None or scores.dim() != 3 or scores.shape[0] != num_classes:
            shape = None if scores is None else tuple(scores.shape)
            raise ValueError(
                f"model output of image {record['image_id']!r} needs {key!r} scores of shape "
                f"[{num_classes}, H, W], got {shape}"
            )
        return scores.argmax(dim=0).to(device="cpu", dtype=torch.uint8).numpy()

    def evaluate(self):
        parts = self._gather((self._confusion, self._num_images, self._encoded))
        if parts is None:
            return {}
        confusion = sum(part[0] for part in parts)
        self._log_coverage(sum(part[1] for part in parts))
        if self._output_dir:
            self._write_pngs([item for part in parts for item in part[2]])
        results = segmentation_metrics(confusion, self._classes)
        if self._spec.official_classes:
            results["mIoU_bdd100k"] = official_drivable_miou(
                confusion, self._spec.official_classes
            )
        summary = {k: v for k, v in results.items() if not k.startswith("IoU-")}
        self._logger.info(f"{self._task} segmentation (%):\n" + create_small_table(summary))
        return {self._spec.result_key: results}

    def _write_pngs(self, encoded):
        for stem, data in encoded:
            path = self._export_path(self._spec.export_name, f"{stem}.png")
            with atomic_path(path) as tmp, open(tmp, "wb") as f:
                f.write(data)
        folder = self._export_path(self._spec.export_name)
        self._logger.info(f"Wrote {len(encoded)} {self._task} predictions to {folder}")


def encode_png(label_map):
    """The PNG bytes of an HxW uint8 map (small enough to gather from every process)."""
    ok, data = cv2.imencode(".png", label_map)
    if not ok:
        raise OSError(f"could not encode a label map of shape {label_map.shape} as PNG")
    return data.tobytes()


def confusion_matrix(gt, prediction, num_classes):
    """KxK int64 counts of (ground truth, prediction) pixel pairs; ground truth 255 is ignored.

    Args:
        gt (np.ndarray): HxW ids in 0..K-1 or 255.
        prediction (np.ndarray): HxW ids in 0..K-1, same shape.
        num_classes (int): K.
    """
    valid = gt != IGNORE_LABEL
    pairs = num_classes * gt[valid].astype(np.int64) + prediction[valid].astype(np.int64)
    counts = np.bincount(pairs, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def segmentation_metrics(confusion, class_names):
    """``mIoU``, ``mACC``, ``pACC`` and ``IoU-<class>`` (percent) of a confusion matrix.

    Means are over the classes present in the ground truth; everything is NaN without any
    valid pixel.
    """
    tp = np.diag(confusion).astype(np.float64)
    gt, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    iou = _iou(tp, gt, predicted)
    present = gt > 0
    total = confusion.sum()
    results = {
        "mIoU": _mean_percent(iou[present]),
        "mACC": _mean_percent(tp[present] / gt[present]),
        "pACC": float(100 * tp.sum() / total) if total else float("nan"),
    }
    results.update({f"IoU-{name}": float(100 * v) for name, v in zip(class_names, iou)})
    return results


def official_drivable_miou(confusion, classes):
    """The official toolkit's drivable mIoU (percent) over ground-truth classes ``classes``.

    Only pixels whose ground truth is in ``classes`` count (the confusion rows of ``classes``),
    so predictions on other pixels affect no class.
    """
    classes = list(classes)
    rows = confusion[classes]
    tp = rows[np.arange(len(classes)), classes].astype(np.float64)
    iou = _iou(tp, rows.sum(axis=1), rows[:, classes].sum(axis=0))
    return _mean_percent(iou[~np.isnan(iou)])


def _iou(tp, gt, predicted):
    """TP / (GT + P - TP) per class; NaN for classes absent from the ground truth."""
    iou = np.full(len(tp), np.nan)
    present = gt > 0
    iou[present] = tp[present] / (gt[present] + predicted[present] - tp[present])
    return iou


def _mean_percent(values):
    return float(100 * values.mean()) if values.size else float("nan")
