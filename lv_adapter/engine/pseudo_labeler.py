"""Pseudo labels: a single-task teacher labels the images of a training set that lack its task.

Outputs follow :mod:`lv_adapter.data.pseudo_labels` (BDD100K's own formats under a pseudo-label
root), so the BDD100K loader reads them back like ground truth. Each task's registration writes
them (``Task.write_pseudo_label``, ``lv_adapter/tasks/``):

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

import torch
from detectron2.config import configurable
from detectron2.data import build_detection_test_loader
from detectron2.utils import comm

from lv_adapter.data.mapper import MultiTaskDatasetMapper
from lv_adapter.engine.predictor import Predictor
from lv_adapter.tasks import get_task

__all__ = [
    "PseudoLabeler",
    "output_path",
    "rank_share",
    "records_lacking",
    "teacher_task",
]


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
    return get_task(task).pseudo_label_file(root, image_id)


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
            "threshold": float(cfg.PSEUDO_LABELS[get_task(task).threshold_key]),
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
        get_task(self.task).write_pseudo_label(path, record, output, self.threshold)


def rank_share(records, rank=None, world_size=None):
    """Image i of ``records`` goes to process i % world_size: every image to exactly one."""
    rank = comm.get_rank() if rank is None else rank
    world_size = comm.get_world_size() if world_size is None else world_size
    return records[rank::world_size]
