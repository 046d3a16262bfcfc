"""A convolutional detection head: FCOS on the shared FPN.

FCOS (Tian et al., ICCV 2019) as detectron2 ships it: per FPN level a classification tower and
a box tower of 3x3 convolutions (shared across levels), one anchor point per location, boxes
regressed as distances to the four sides, a centerness branch; targets by center sampling,
focal loss + GIoU + centerness losses; inference thresholds, top-k per level and NMS. It is the
convolutional counterpart of the Sparse R-CNN head for the paper's table 8.

detectron2's ``FCOS`` is a meta-architecture that runs its own backbone. Here it only holds the
head, the anchors, the losses and the inference, and is fed the shared FPN's maps; the backbone
it is built with is a stand-in that gives the FPN's output shapes (for the anchor strides).
"""
import torch
from detectron2.config import configurable
from detectron2.modeling.meta_arch.fcos import FCOS, FCOSHead
from detectron2.structures import Boxes, ImageList, Instances
from torch import nn

from lv_adapter import compat
from lv_adapter.modeling.task_heads import TASK_HEAD_REGISTRY, feature_shapes
from lv_adapter.tasks import DETECTION

__all__ = ["FCOSDetectionHead"]

# detectron2's loss names -> this task's (loss_<task>_<term>).
LOSS_NAMES = {"loss_fcos_cls": "loss_detection_cls", "loss_fcos_loc": "loss_detection_giou",
              "loss_fcos_ctr": "loss_detection_ctr"}


class _FeatureShapes(nn.Module):
    """Stands in for the backbone in detectron2's FCOS: gives the shapes, never runs."""

    def __init__(self, shapes):
        super().__init__()
        self._shapes = dict(shapes)

    def output_shape(self):
        return self._shapes

    def forward(self, images):
        raise RuntimeError("FCOSDetectionHead runs on the multi-task model's features")


class _FCOS(FCOS):
    """detectron2's FCOS, also for images without boxes, which the detection task has (scenes
    labeled for detection with nothing in them): detectron2 0.6's matching indexes an empty set
    of boxes (its main branch labels such images itself)."""

    @torch.no_grad()
    def label_anchors(self, anchors, gt_instances):
        """Per image [R] anchor labels (num_classes = background) and [R] matched boxes."""
        if compat.fcos_labels_images_without_boxes() or all(len(gt) for gt in gt_instances):
            return super().label_anchors(anchors, gt_instances)
        labels, boxes = [], []  # detectron2 0.6: its losses read the matched boxes as Boxes
        for gt in gt_instances:
            if len(gt) == 0:
                every = Boxes.cat(anchors)
                labels.append(torch.full((len(every),), self.num_classes, dtype=torch.long,
                                         device=every.device))
                boxes.append(every)  # read only at positive anchors, of which there are none
            else:
                label, box = super().label_anchors(anchors, [gt])
                labels += label
                boxes += box
        return labels, boxes


@TASK_HEAD_REGISTRY.register()
class FCOSDetectionHead(nn.Module):
    """Dense convolutional detection on the FPN.

    Args:
        detector (FCOS): detectron2's FCOS (:class:`_FCOS`) with a :class:`_FeatureShapes`
            backbone.
    """

    TASKS = (DETECTION,)

    @configurable
    def __init__(self, *, detector):
        super().__init__()
        self.detector = detector

    @classmethod
    def from_config(cls, cfg, input_shape, task=DETECTION):
        node = cfg.MODEL.FCOS
        key = "MODEL.FCOS.IN_FEATURES"
        shapes = list(feature_shapes(input_shape, node.IN_FEATURES, key).values())
        # The detection task's class count is kept in the core's detection node, which the
        # LV-Adapter's prompts read as well.
        num_classes = cfg.MODEL.SPARSE_RCNN.NUM_CLASSES
        head = FCOSHead(input_shape=shapes, conv_dims=[shapes[0].channels] * node.NUM_CONVS,
                        num_classes=num_classes, prior_prob=node.PRIOR_PROB,
                        norm=_norm(node.NORM))
        detector = _FCOS(
            backbone=_FeatureShapes(input_shape), head=head,
            head_in_features=list(node.IN_FEATURES), num_classes=num_classes,
            center_sampling_radius=node.CENTER_SAMPLING_RADIUS,
            focal_loss_alpha=node.FOCAL_LOSS_ALPHA, focal_loss_gamma=node.FOCAL_LOSS_GAMMA,
            test_score_thresh=node.SCORE_THRESH_TEST,
            test_topk_candidates=node.TOPK_CANDIDATES_TEST, test_nms_thresh=node.NMS_THRESH_TEST,
            max_detections_per_image=cfg.TEST.DETECTIONS_PER_IMAGE,
            pixel_mean=cfg.MODEL.PIXEL_MEAN, pixel_std=cfg.MODEL.PIXEL_STD,
        )
        return {"detector": detector}

    def forward(self, features, image_sizes, targets=None):
        """
        Args:
            features (dict[str, Tensor]): FPN maps [B, C, H_i, W_i], holding MODEL.FCOS.IN_FEATURES.
            image_sizes (list[tuple[int, int]]): (height, width) of each image before padding.
            targets (list[dict] or None): training only; per image ``{"labels": [T], "boxes":
                [T, 4]}`` absolute XYXY (the detection task's contract).

        Returns:
            tuple: training ``(None, {"loss_detection_{cls,giou,ctr}": scalar})``; inference
            ``(list[Instances] with pred_boxes, scores, pred_classes at image_sizes, {})``.
        """
        maps = [features[name] for name in self.detector.head_in_features]
        predictions = self.detector.head(maps)
        # FCOS reads only the sizes of the images, not their pixels.
        images = ImageList(maps[0], list(image_sizes))
        if self.training:
            if targets is None:
                raise ValueError("the detection head needs targets in training mode")
            instances = [_instances(t, size) for t, size in zip(targets, image_sizes)]
            losses = self.detector.forward_training(images, maps, predictions, instances)
            return None, {LOSS_NAMES[key]: value for key, value in losses.items()}
        return self.detector.forward_inference(images, maps, predictions), {}

    def loss_keys(self):
        """The keys of the training losses (for logging zeros when a batch lacks this task)."""
        return list(LOSS_NAMES.values())


def _norm(name):
    """MODEL.FCOS.NORM as detectron2's RetinaNet-style head takes it.

    That head probes the norm's type by building it for one channel, which 32-group GroupNorm
    refuses; "GN" therefore becomes a callable that builds 32 groups (fewer below 32 channels).
    """
    if name != "GN":
        return name
    return lambda channels: nn.GroupNorm(min(32, channels), channels)


def _instances(target, image_size):
    return Instances(tuple(image_size), gt_boxes=Boxes(target["boxes"]),
                     gt_classes=target["labels"])
