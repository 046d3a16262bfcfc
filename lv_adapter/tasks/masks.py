"""Tasks labeled by a mask of class ids per pixel (semantic and drivable-area segmentation).

Dataset dicts name the mask file under ``label_keys[0]``; the mapper reads it (checked against
the image size and the head's class count), transforms it with the image and writes an HxW long
tensor under ``input_key`` (255 = ignored, all 255 when the image is not labeled for the task);
the model returns ``[K, H, W]`` class scores under ``output_key``.
"""
import os

import cv2
import numpy as np
import torch
from detectron2.data import Metadata
from detectron2.data import transforms as T
from detectron2.modeling.postprocessing import sem_seg_postprocess
from torch.nn import functional as F

from lv_adapter.tasks.base import (IGNORE_LABEL, SUMMARY_DECIMALS, TASK_REGISTRY, WEAK_SHARE,
                                   Task)
from lv_adapter.utils.io import write_image

__all__ = ["MaskTask", "confident_labels", "mask_task_names", "transform_label_mask"]


class MaskTask(Task):
    """A task whose label is a mask of class ids.

    Attributes (besides :class:`Task`'s): ``legacy_key``: a dataset-dict flag that marks a mask
    in an older encoding, remapped by ``legacy_lut`` (a 256-entry uint8 table); ``export_name``:
    the folder of the exported prediction PNGs (``<output>/<dataset export folder>/<name>/``);
    ``official_classes``: the ground-truth classes the official toolkit's mIoU counts when it
    differs from the mean over all classes (empty: it does not); ``hidden_class``: a class left
    undrawn (drivable's background, so the scene stays visible); ``draw_alpha`` and
    ``draw_area_threshold``: detectron2's ``draw_sem_seg`` arguments.
    """

    default_head = "MaskFormerHead"
    legacy_key = None
    legacy_lut = None
    export_name = ""
    official_classes = ()
    hidden_class = None
    draw_alpha = 0.5
    draw_area_threshold = 0

    @property
    def result_key(self):
        """The evaluator's results key: the output key (``sem_seg``, ``drivable_seg``)."""
        return self.output_key

    def read_label(self, dataset_dict, image_shape, num_classes=None):
        """The HxW uint8 mask of one image (checked: size, values in 0..K-1 or 255)."""
        from lv_adapter.data.readers import read_record_mask  # the data layer reads the tasks

        return read_record_mask(dataset_dict, self.name, image_shape, num_classes)

    def map_label(self, label, dataset_dict, transforms, image_shape):
        """HxW int64 tensor: ``label`` under ``transforms``, or all 255 when ``label`` is None.

        The int64 array is made by NumPy in one copy: torch's ``.long()`` and ``torch.full``
        split a 720p mask over its intra-op threads, which stall (about 10x slower) when another
        process holds a core, as in the main process of a loader with NUM_WORKERS 0.
        """
        if label is None:
            return torch.from_numpy(np.full(image_shape, IGNORE_LABEL, dtype=np.int64))
        mask = transform_label_mask(transforms, label)
        return torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))

    def targets(self, batched_inputs, images):
        """Per image, one binary mask per class present: ``{"labels": [T], "masks": [T, H, W],
        "valid": [H, W]}``.

        Masks are at the padded batch resolution; padding and 255 pixels belong to no mask and
        are not ``valid`` (the criterion leaves them out of its losses, or not, as configured).
        """
        height, width = images.tensor.shape[-2:]
        out = []
        for x in batched_inputs:
            seg = x[self.input_key].to(images.tensor.device)
            padding = (0, width - seg.shape[1], 0, height - seg.shape[0])
            seg = F.pad(seg, padding, value=IGNORE_LABEL)
            labels = seg.unique()
            labels = labels[labels != IGNORE_LABEL]
            out.append({"labels": labels, "masks": seg[None] == labels[:, None, None],
                        "valid": seg != IGNORE_LABEL})
        return out

    def postprocess(self, result, image_size, height, width):
        """[K, H_pad, W_pad] scores -> [K, height, width]: crop the padding, resize if needed."""
        if tuple(image_size) == (height, width):  # evaluated at the original size: crop only
            return result[:, :height, :width]
        return sem_seg_postprocess(result, image_size, height, width)

    def export_names(self):
        return [self.output_key]

    def to_export_tensors(self, result):
        """The [K, H_pad, W_pad] scores."""
        return (result,)

    def from_export_tensors(self, tensors, image_size):
        return tensors[0]

    def build_evaluator(self, dataset_name, output_dir=None, ground_truth=None):
        """Confusion-matrix mIoU / pixel accuracy (results key: ``output_key``)."""
        from lv_adapter.evaluation.segmentation import SegmentationEvaluator

        return SegmentationEvaluator(dataset_name, self.name, output_dir=output_dir,
                                     ground_truth=ground_truth)

    def pseudo_label_file(self, root, image_id):
        return os.path.join(root, self.pseudo_path, f"{image_id}.png")

    def read_pseudo_labels(self, path, handler):
        """The ``<image stem>.png`` masks of the folder ``path`` (no 2018 suffixes, the current
        encoding), under ``label_keys[0]``."""
        from lv_adapter.data.datasets.mask_files import match_masks

        masks = match_masks(path, (".png",), self.name)
        return {stem: {self.label_keys[0]: mask} for stem, mask in masks.items()}

    def write_pseudo_label(self, path, record, output, threshold):
        """A uint8 label-id PNG of the original size, 255 where the teacher is unsure
        (:func:`confident_labels`)."""
        labels = confident_labels(output[self.output_key], threshold)
        if labels.shape != (record["height"], record["width"]):
            raise ValueError(
                f"{record['file_name']}: the teacher's {self.name} output is "
                f"{labels.shape[1]}x{labels.shape[0]}, the image {record['width']}x"
                f"{record['height']} (WxH)"
            )
        write_image(path, labels)

    def finish_pseudo_labels(self, root, image_ids):
        """Per-class share of all pixels and the share left at 255, read from the masks."""
        counts = np.zeros(256, dtype=np.int64)
        for image_id in image_ids:
            path = self.pseudo_label_file(root, image_id)
            mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
            if mask is None:
                raise OSError(f"{path}: cannot read this pseudo-label mask")
            counts += np.bincount(mask.ravel(), minlength=256)
        total = int(counts.sum())

        def share(count):
            return round(float(count) / total, SUMMARY_DECIMALS) if total else 0.0

        return {
            "pixels": total,
            "ignored_share": share(counts[IGNORE_LABEL]),
            "class_coverage": {name: share(counts[i]) for i, name in enumerate(self.classes)},
        }

    def weak_pseudo_label_warnings(self, summary, key):
        ignored = summary.get("ignored_share", 0.0)
        if ignored > WEAK_SHARE:
            return [f"{ignored:.0%} of the {self.name} pixels are left at 255 (below {key}): "
                    f"the pseudo masks label little; train the teacher longer or lower {key}"]
        return []

    def drawable_from_label(self, dataset_dict):
        """The HxW class ids of the image's mask (checked as the mapper checks it)."""
        if self.name not in dataset_dict.get("labeled_tasks", ()):
            return None
        from lv_adapter.data.readers import read_record_mask

        return read_record_mask(dataset_dict, self.name,
                                (dataset_dict["height"], dataset_dict["width"]))

    def drawable_from_output(self, outputs, score_threshold=0.5):
        """The HxW argmax of the ``[K, H, W]`` scores."""
        if self.output_key not in outputs:
            return None
        return outputs[self.output_key].argmax(dim=0).cpu().numpy()

    def draw(self, vis, drawable, metadata):
        """The class ids as a translucent overlay with class names, ``hidden_class`` left out."""
        if self.hidden_class is not None:
            drawable = np.where(drawable == self.hidden_class, IGNORE_LABEL, drawable)
        own = Metadata(stuff_classes=list(self.classes_of(metadata)),
                       stuff_colors=[list(c) for c in self.colors_of(metadata)])
        shared, vis.metadata = vis.metadata, own  # draw_sem_seg names classes by vis.metadata
        try:
            vis.draw_sem_seg(drawable, area_threshold=self.draw_area_threshold,
                             alpha=self.draw_alpha)
        finally:
            vis.metadata = shared


def mask_task_names():
    """The registered tasks labeled by masks, in registration order."""
    return tuple(name for name, task in TASK_REGISTRY if isinstance(task, MaskTask))


def transform_label_mask(transforms, labels):
    """``transforms.apply_segmentation(labels)`` (HxW class ids), with resizes done by OpenCV.

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
    labels[confidence < threshold] = IGNORE_LABEL
    return labels.numpy()
