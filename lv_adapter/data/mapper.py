"""MultiTaskDatasetMapper: one BDD100K dataset dict -> one multi-task model input."""
import inspect
import logging

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from lv_adapter.data.errors import BadSampleError, BadSampleHandler
from lv_adapter.data.pseudo_labels import PSEUDO_TASKS_KEY
from lv_adapter.data.readers import check_image_size, read_image
from lv_adapter.tasks import get_task, task_names

__all__ = ["MultiTaskDatasetMapper", "build_multitask_augmentation"]


def build_multitask_augmentation(cfg, is_train):
    """Detectron2's resize (+ flip) augmentation, with ``INPUT.CROP`` first when enabled.

    The same list transforms the image, the boxes and both masks.
    """
    augs = utils.build_augmentation(cfg, is_train)
    if is_train and cfg.INPUT.CROP.ENABLED:
        augs.insert(0, T.RandomCrop(cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE))
    return augs


class MultiTaskDatasetMapper:
    """Reads an image and whichever labels it has, and transforms them together.

    Output dict (DESIGN.md's model-input contract):

    * ``image``: CxHxW uint8 tensor in ``image_format``;
    * in training, per task of ``tasks`` its label under the task's ``input_key``, made by the
      task's registration (``lv_adapter/tasks/``), "unlabeled" when the image lacks the task:
      ``instances``: :class:`Instances` with ``gt_boxes`` (XYXY, clipped, empty boxes removed)
      and ``gt_classes``; crowd/ignore boxes are not targets; empty when detection is not
      labeled; ``sem_seg``, ``drivable_seg``: HxW long tensors, 255 where ignored or not labeled;
    * ``labeled_tasks``: tuple of the tasks this image has labels for (ground truth or pseudo);
    * ``pseudo_tasks``: tuple, the subset of ``labeled_tasks`` whose labels are pseudo labels
      (a teacher's); empty for ground truth only. Pseudo masks and boxes are read, checked and
      augmented exactly as ground truth (every written pseudo box is a target);
    * ``file_name``, ``image_id``, ``height``, ``width``: passed through (original size).

    In test mode only the image is read and resized; evaluators read ground truth themselves.
    """

    @configurable
    def __init__(self, is_train=True, *, augmentations, image_format="BGR", on_bad_sample="raise",
                 num_classes=None, tasks=None):
        """
        Args:
            is_train (bool): read and transform labels; otherwise image only.
            augmentations (list[Augmentation]): applied to image, boxes and masks together.
            image_format (str): PIL/detectron2 image format of the ``image`` output.
            on_bad_sample (str): "raise" or "skip" (training only: the mapper returns None and
                detectron2's dataset draws another sample). Evaluation always raises, because a
                substituted image would corrupt the metrics.
            num_classes (dict or None): mask task -> its number of classes K (the heads'); a mask
                value >= K other than 255 is a bad sample. None: BDD100K's.
            tasks (iterable[str] or None): the tasks whose labels are mapped (the model's, in
                training); None: every registered task.
        """
        self.is_train = is_train
        for aug in augmentations:
            needs = aug.input_args or tuple(inspect.signature(aug.get_transform).parameters)
            if tuple(needs) != ("image",):
                raise ValueError(f"{aug} needs {needs}; augmentations may use only the image")
        self.augmentations = list(augmentations)
        self.image_format = image_format
        self.num_classes = dict(num_classes or {})
        self.tasks = {name: get_task(name) for name in (task_names() if tasks is None else tasks)}
        self._bad_samples = BadSampleHandler(on_bad_sample if is_train else "raise", "image")
        mode = "training" if is_train else "inference"
        logging.getLogger(__name__).info(f"[MultiTaskDatasetMapper] {mode}: {augmentations}")

    @classmethod
    def from_config(cls, cfg, is_train=True):
        return {
            "is_train": is_train,
            "augmentations": build_multitask_augmentation(cfg, is_train),
            "image_format": cfg.INPUT.FORMAT,
            "on_bad_sample": cfg.DATASETS.ON_BAD_SAMPLE,
            "num_classes": {task: get_task(task).num_classes(cfg) for task in cfg.MODEL.TASKS},
            "tasks": cfg.MODEL.TASKS,
        }

    def __call__(self, dataset_dict):
        """Map one dataset dict; returns None for a bad sample under the "skip" policy."""
        try:
            return self._map(dict(dataset_dict))  # a copy: check_image_size may add keys
        except BadSampleError as e:
            self._bad_samples(e)
            return None

    def _map(self, dataset_dict):
        image = read_image(dataset_dict["file_name"], self.image_format)
        check_image_size(dataset_dict, image)
        tasks = tuple(dataset_dict.get("labeled_tasks", ()))
        labels = {}
        if self.is_train:  # read (and check) the masks before the image is transformed
            labels = {
                name: task.read_label(dataset_dict, image.shape[:2], self.num_classes.get(name))
                for name, task in self.tasks.items() if name in tasks
            }
        image, transforms = self._augment(image)
        keep = ("file_name", "image_id", "height", "width")
        out = {k: dataset_dict[k] for k in keep if k in dataset_dict}
        out["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        out["labeled_tasks"] = tasks
        out[PSEUDO_TASKS_KEY] = tuple(dataset_dict.get(PSEUDO_TASKS_KEY, ()))
        if self.is_train:
            for name, task in self.tasks.items():
                out[task.input_key] = task.map_label(labels.get(name), dataset_dict, transforms,
                                                     image.shape[:2])
        return out

    def _augment(self, image):
        """Apply the augmentations to ``image``; return it and the transforms to replay on labels.

        A resize to the size the image already has (BDD100K's 720p at MIN_SIZE 720) is dropped:
        it would copy the image and both masks for nothing.
        """
        transforms = []
        for aug in self.augmentations:
            transform = aug.get_transform(image)
            if isinstance(transform, T.NoOpTransform) or _is_identity_resize(transform):
                continue
            image = transform.apply_image(image)
            transforms.append(transform)
        return image, T.TransformList(transforms)


def _is_identity_resize(transform):
    return isinstance(transform, T.ResizeTransform) and (transform.h, transform.w) == (
        transform.new_h, transform.new_w
    )
