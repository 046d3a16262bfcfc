"""MultiTaskDatasetMapper: one BDD100K dataset dict -> one multi-task model input."""
import inspect
import logging

import cv2
import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.structures import Boxes, Instances

from lv_adapter.data.classes import head_num_classes
from lv_adapter.data.datasets.categories import DETECTION, DRIVABLE, IGNORE_LABEL, SEMANTIC
from lv_adapter.data.errors import BadSampleError, BadSampleHandler
from lv_adapter.data.pseudo_labels import PSEUDO_TASKS_KEY
from lv_adapter.data.readers import MASK_TASKS, check_image_size, read_image, read_record_mask

__all__ = ["MultiTaskDatasetMapper", "build_multitask_augmentation"]

# Model-input key of each segmentation task's mask.
MASK_KEYS = {SEMANTIC: "sem_seg", DRIVABLE: "drivable_seg"}


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
    * ``instances``: :class:`Instances` with ``gt_boxes`` (XYXY, clipped, empty boxes removed) and
      ``gt_classes``; crowd/ignore boxes are not targets; empty when detection is not labeled;
    * ``sem_seg``, ``drivable_seg``: HxW long tensors, 255 where ignored or not labeled;
    * ``labeled_tasks``: tuple of the tasks this image has labels for (ground truth or pseudo);
    * ``pseudo_tasks``: tuple, the subset of ``labeled_tasks`` whose labels are pseudo labels
      (a teacher's); empty for ground truth only. Pseudo masks and boxes are read, checked and
      augmented exactly as ground truth (every written pseudo box is a target);
    * ``file_name``, ``image_id``, ``height``, ``width``: passed through (original size).

    In test mode only the image is read and resized; evaluators read ground truth themselves.
    """

    @configurable
    def __init__(self, is_train=True, *, augmentations, image_format="BGR", on_bad_sample="raise",
                 num_classes=None):
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
        """
        self.is_train = is_train
        for aug in augmentations:
            needs = aug.input_args or tuple(inspect.signature(aug.get_transform).parameters)
            if tuple(needs) != ("image",):
                raise ValueError(f"{aug} needs {needs}; augmentations may use only the image")
        self.augmentations = list(augmentations)
        self.image_format = image_format
        self.num_classes = dict(num_classes or {})
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
            "num_classes": {task: head_num_classes(cfg, task) for task in MASK_TASKS},
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
        masks = {}
        if self.is_train:
            masks = {
                task: read_record_mask(dataset_dict, task, image.shape[:2],
                                       self.num_classes.get(task))
                for task in MASK_TASKS if task in tasks
            }
        image, transforms = self._augment(image)
        keep = ("file_name", "image_id", "height", "width")
        out = {k: dataset_dict[k] for k in keep if k in dataset_dict}
        out["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        out["labeled_tasks"] = tasks
        out[PSEUDO_TASKS_KEY] = tuple(dataset_dict.get(PSEUDO_TASKS_KEY, ()))
        if self.is_train:
            out["instances"] = self._instances(dataset_dict, transforms, image.shape[:2])
            out.update(self._transform_masks(masks, transforms, image.shape[:2]))
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

    @staticmethod
    def _transform_masks(masks, transforms, image_shape):
        """Return ``{sem_seg, drivable_seg}`` as HxW long tensors (255 when not labeled).

        The int64 arrays are made by NumPy in one copy: torch's ``.long()`` and ``torch.full``
        split a 720p mask over its intra-op threads, which stall (about 10x slower) when another
        process holds a core, as in the main process of a loader with NUM_WORKERS 0.
        """
        out = {}
        for task, out_key in MASK_KEYS.items():
            if task in masks:
                labels = _transform_labels(transforms, masks[task])
                mask = np.ascontiguousarray(labels, dtype=np.int64)
            else:
                mask = np.full(image_shape, IGNORE_LABEL, dtype=np.int64)
            out[out_key] = torch.from_numpy(mask)
        return out

    @staticmethod
    def _instances(dataset_dict, transforms, image_shape):
        """Targets of the non-crowd boxes, transformed, clipped, empty ones removed."""
        annos = []
        if DETECTION in dataset_dict.get("labeled_tasks", ()):
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


def _is_identity_resize(transform):
    return isinstance(transform, T.ResizeTransform) and (transform.h, transform.w) == (
        transform.new_h, transform.new_w
    )


def _transform_labels(transforms, labels):
    """``transforms.apply_segmentation(labels)``, with resizes done by OpenCV.

    INTER_NEAREST_EXACT samples at pixel centres exactly as PIL's NEAREST (detectron2's choice
    for masks) does, at a fraction of the cost of PIL's round trip.
    """
    for transform in transforms.transforms:
        if isinstance(transform, T.ResizeTransform):
            size = (transform.new_w, transform.new_h)
            labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST_EXACT)
        else:
            labels = transform.apply_segmentation(labels)
    return labels
