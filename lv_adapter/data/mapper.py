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

from lv_adapter.data.datasets.categories import DETECTION, DRIVABLE, IGNORE_LABEL, SEMANTIC
from lv_adapter.data.errors import BadSampleError, BadSampleHandler
from lv_adapter.data.readers import read_image, read_label_mask

__all__ = ["MultiTaskDatasetMapper", "build_multitask_augmentation"]

# Dataset-dict key of each segmentation task's mask file, and the model-input key of its mask.
MASK_KEYS = {
    SEMANTIC: ("sem_seg_file_name", "sem_seg"),
    DRIVABLE: ("drivable_file_name", "drivable_seg"),
}


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
    * ``labeled_tasks``: tuple of the tasks this image has labels for;
    * ``file_name``, ``image_id``, ``height``, ``width``: passed through (original size).

    In test mode only the image is read and resized; evaluators read ground truth themselves.
    """

    @configurable
    def __init__(self, is_train=True, *, augmentations, image_format="BGR", on_bad_sample="raise"):
        """
        Args:
            is_train (bool): read and transform labels; otherwise image only.
            augmentations (list[Augmentation]): applied to image, boxes and masks together.
            image_format (str): PIL/detectron2 image format of the ``image`` output.
            on_bad_sample (str): "raise" or "skip" (training only: the mapper returns None and
                detectron2's dataset draws another sample). Evaluation always raises, because a
                substituted image would corrupt the metrics.
        """
        self.is_train = is_train
        for aug in augmentations:
            needs = aug.input_args or tuple(inspect.signature(aug.get_transform).parameters)
            if tuple(needs) != ("image",):
                raise ValueError(f"{aug} needs {needs}; augmentations may use only the image")
        self.augmentations = list(augmentations)
        self.image_format = image_format
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
        self._check_size(dataset_dict, image)
        tasks = tuple(dataset_dict.get("labeled_tasks", ()))
        masks = self._read_masks(dataset_dict, tasks, image.shape[:2]) if self.is_train else {}
        image, transforms = self._augment(image)
        keep = ("file_name", "image_id", "height", "width")
        out = {k: dataset_dict[k] for k in keep if k in dataset_dict}
        out["image"] = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        out["labeled_tasks"] = tasks
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
    def _check_size(dataset_dict, image):
        try:
            utils.check_image_size(dataset_dict, image)
        except utils.SizeMismatchError as e:
            raise BadSampleError(dataset_dict["file_name"], str(e))

    @staticmethod
    def _read_masks(dataset_dict, tasks, image_shape):
        masks = {}
        for task, (file_key, _) in MASK_KEYS.items():
            if task not in tasks:
                continue
            if file_key not in dataset_dict:
                raise BadSampleError(
                    dataset_dict["file_name"], f"labeled for {task} but has no {file_key!r}"
                )
            legacy = task == DRIVABLE and dataset_dict.get("drivable_legacy", False)
            masks[task] = read_label_mask(dataset_dict[file_key], task, image_shape, legacy)
        return masks

    @staticmethod
    def _transform_masks(masks, transforms, image_shape):
        """Return ``{sem_seg, drivable_seg}`` as HxW long tensors (255 when not labeled)."""
        out = {}
        for task, (_, out_key) in MASK_KEYS.items():
            if task in masks:
                mask = np.ascontiguousarray(_transform_labels(transforms, masks[task]))
                out[out_key] = torch.from_numpy(mask).long()
            else:
                out[out_key] = torch.full(image_shape, IGNORE_LABEL, dtype=torch.int64)
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
