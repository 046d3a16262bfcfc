"""Pseudo labels: a single-task teacher labels the images of a training set that lack its task.

Outputs follow :mod:`lv_adapter.data.pseudo_labels` (BDD100K's own formats under a pseudo-label
root), so the BDD100K loader reads them back like ground truth:

* detection: one ``det_20`` frame per image, ``{"name", "labels": [{"id", "category", "box2d",
  "score"}]}``, keeping the boxes whose score is at least ``PSEUDO_LABELS.DET_SCORE_THRESH``.
  ``box2d`` uses BDD100K's inclusive pixel indices: a predicted continuous box
  ``(x1, y1, x2, y2)`` is written as ``x2 - 1, y2 - 1``, the inverse of the loader's ``+ 1``.
  A box less than one pixel wide or high has no such form; it is left out and counted in the
  summary (``boxes_below_one_pixel``).
* semantic / drivable: a uint8 label-id PNG of the original image size; pixels whose
  confidence is below ``PSEUDO_LABELS.SEM_SEG_THRESH`` / ``DRIVABLE_THRESH`` are 255.

Confidence of a segmentation pixel. MaskFormer's per-pixel class scores
``s_k(x) = sum_q p_q(k) * sigmoid(m_q(x))`` (``sem_seg`` / ``drivable_seg`` outputs, KxHxW) are
not probabilities: they are >= 0 and their sum over classes lies anywhere between 0 and the
number of queries. The confidence used here is the winning class's share of that sum,
``max_k s_k(x) / sum_k s_k(x)`` (0 where the sum is 0): 1 when every query that covers the pixel
votes for the same class, 1/K when the votes are spread evenly. It does not depend on how many
queries cover the pixel, only on how much they agree, and a threshold of 0.5 keeps exactly the
pixels where the winner outweighs all other classes together.

Each image's output is one file written atomically (detection: a part file
``<root>/.parts/detection/<stem>.json``, merged into ``det_train.json`` at the end, then
removed), and an image whose file exists is not labeled again: a run killed at any moment
continues where it stopped and ends with the same bytes as an uninterrupted one. See
:mod:`.pseudo_summary` for the end.
"""
import collections
import os

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import build_detection_test_loader
from detectron2.utils import comm

from lv_adapter.data.mapper import MultiTaskDatasetMapper
from lv_adapter.data.pseudo_labels import pseudo_label_paths
from lv_adapter.engine.predictor import Predictor
from lv_adapter.tasks import DETECTION, DRIVABLE, SEMANTIC
from lv_adapter.tasks.detection import DET_CLASSES
from lv_adapter.utils.io import write_image, write_json

__all__ = [
    "THRESHOLD_KEYS",
    "PseudoLabeler",
    "confident_labels",
    "detection_frame",
    "output_path",
    "rank_share",
    "records_lacking",
    "teacher_task",
]

# The config key of each task's threshold (named in summaries and messages).
THRESHOLD_KEYS = {
    DETECTION: "DET_SCORE_THRESH",
    SEMANTIC: "SEM_SEG_THRESH",
    DRIVABLE: "DRIVABLE_THRESH",
}
# Model-output key of each segmentation task's KxHxW scores.
SCORE_KEYS = {SEMANTIC: "sem_seg", DRIVABLE: "drivable_seg"}
PARTS_FOLDER = ".parts"
IGNORE = 255
# Decimals kept in the JSON: far below a pixel and below any useful score difference, and the
# file is a third the size of one with every float digit.
BOX_DECIMALS, SCORE_DECIMALS = 3, 4


def teacher_task(cfg):
    """The one task of a teacher config; ValueError naming MODEL.TASKS otherwise."""
    tasks = list(cfg.MODEL.TASKS)
    if len(tasks) != 1:
        raise ValueError(
            f"a teacher config must have exactly one task in MODEL.TASKS, got {tasks}: pseudo "
            "labels come from single-task teachers (e.g. MODEL.TASKS \"['semantic']\")"
        )
    return tasks[0]


def records_lacking(dicts, task):
    """The dataset dicts not labeled for ``task``, sorted by ``image_id`` (duplicates refused)."""
    lacking = sorted(
        (d for d in dicts if task not in d.get("labeled_tasks", ())), key=lambda d: d["image_id"]
    )
    counts = collections.Counter(d["image_id"] for d in lacking)
    twice = sorted(image_id for image_id, count in counts.items() if count > 1)
    if twice:
        raise ValueError(f"image ids appear twice in the dataset: {twice[:5]}")
    return lacking


def output_path(root, task, image_id):
    """The file whose presence marks ``image_id`` labeled for ``task`` under ``root``."""
    if task == DETECTION:
        return os.path.join(root, PARTS_FOLDER, DETECTION, f"{image_id}.json")
    return os.path.join(pseudo_label_paths(root)[task], f"{image_id}.png")


def detection_frame(name, instances, threshold):
    """One ``det_20`` frame from a teacher's ``Instances`` (see module doc).

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


def confident_labels(scores, threshold):
    """Label ids of a KxHxW score map, 255 where the confidence is below ``threshold``.

    Args:
        scores (Tensor): [K, H, W] non-negative class scores (MaskFormer's semantic inference).
        threshold (float): lowest confidence (the winner's share of the scores' sum) kept.

    Returns:
        np.ndarray: HxW uint8, values in 0..K-1 or 255.
    """
    scores = scores.float().cpu()
    best, labels = scores.max(dim=0)
    total = scores.sum(dim=0)
    confidence = torch.where(total > 0, best / total.clamp_min(1e-12), torch.zeros_like(total))
    labels = labels.to(torch.uint8)
    labels[confidence < threshold] = IGNORE
    return labels.numpy()


class PseudoLabeler:
    """Runs a teacher over dataset dicts and writes one output file per image.

    Images are read and resized by the test-mode :class:`MultiTaskDatasetMapper`, exactly as in
    evaluation, and predicted one at a time.
    """

    @configurable
    def __init__(self, *, model, mapper, task, threshold, num_workers=0):
        """
        Args:
            model (nn.Module): the teacher in evaluation mode, weights loaded.
            mapper (callable): dataset dict -> model input (test mode).
            task (str): the teacher's task.
            threshold (float): the task's score or confidence threshold.
            num_workers (int): data-loading processes.
        """
        self.model, self.mapper = model, mapper
        self.task, self.threshold, self.num_workers = task, threshold, num_workers

    @classmethod
    def from_config(cls, cfg):
        task = teacher_task(cfg)
        return {
            # strict loading and folded norms, as train_net.py --eval-only
            "model": Predictor(cfg).model,
            "mapper": MultiTaskDatasetMapper(cfg, False),
            "task": task,
            "threshold": float(cfg.PSEUDO_LABELS[THRESHOLD_KEYS[task]]),
            "num_workers": cfg.DATALOADER.NUM_WORKERS,
        }

    def label(self, records, root, progress=None, stop_after=None):
        """Label ``records`` in order, writing each image's file under ``root``.

        Args:
            records (list[dict]): dataset dicts (``file_name``, ``image_id``, ``height``,
                ``width``) not yet labeled.
            progress (callable or None): called once per image written.
            stop_after (int or None): testing hook: end the process abruptly (no clean-up, as a
                kill would) after this many images.
        """
        if not records:  # all labeled already (a resumed run), or this process got no share
            return
        loader = build_detection_test_loader(
            records, mapper=self.mapper, num_workers=self.num_workers,
            sampler=torch.utils.data.SequentialSampler(records),
        )
        for count, (inputs, record) in enumerate(zip(loader, records), 1):
            with torch.no_grad():
                output = self.model(inputs)[0]
            self._write(root, record, output)
            if progress is not None:
                progress()
            if stop_after is not None and count >= stop_after:
                os._exit(3)

    def _write(self, root, record, output):
        path = output_path(root, self.task, record["image_id"])
        if self.task == DETECTION:
            name = os.path.basename(record["file_name"])
            frame, too_small = detection_frame(name, output["instances"], self.threshold)
            write_json(path, {"frame": frame, "boxes_below_one_pixel": too_small})
            return
        labels = confident_labels(output[SCORE_KEYS[self.task]], self.threshold)
        if labels.shape != (record["height"], record["width"]):
            raise ValueError(
                f"{record['file_name']}: the teacher's {self.task} output is "
                f"{labels.shape[1]}x{labels.shape[0]}, the image {record['width']}x"
                f"{record['height']} (WxH)"
            )
        write_image(path, labels)


def rank_share(records, rank=None, world_size=None):
    """Image i of ``records`` goes to process i % world_size: every image to exactly one."""
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    return records[rank::world_size]
