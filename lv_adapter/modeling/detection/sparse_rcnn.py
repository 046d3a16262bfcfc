"""Sparse R-CNN detection head (Sun et al., CVPR 2021).

A fixed set of learnable proposal boxes and proposal features, refined by a sequence of
:class:`DynamicStage`; every stage is supervised by the set loss, the last one is the output.
No anchors, no NMS: the prediction set is one-to-one matched to the objects in training.
"""
import torch
from detectron2.config import configurable
from detectron2.modeling.poolers import ROIPooler
from detectron2.structures import Boxes, Instances
from torch import nn

from lv_adapter.modeling.box_ops import box_cxcywh_to_xyxy
from lv_adapter.modeling.detection.criterion import SparseRCNNCriterion
from lv_adapter.modeling.detection.dynamic_head import DynamicStage
from lv_adapter.modeling.task_heads import TASK_HEAD_REGISTRY, feature_shapes
from lv_adapter.tasks import DETECTION


@TASK_HEAD_REGISTRY.register()
class SparseRCNNHead(nn.Module):
    """Detection head on FPN features.

    Args:
        in_features (list[str]): FPN levels to pool from, finest first (e.g. p2..p5).
        input_shape (dict[str, ShapeSpec]): shapes of (at least) ``in_features``.
        num_classes, num_proposals, hidden_dim, num_stages (int): K, Q, C and the stage count.
        pooler_resolution, pooler_sampling_ratio, pooler_type: RoI pooling parameters.
        criterion (SparseRCNNCriterion): the set loss.
        test_topk (int): detections kept per image at inference.
        **stage_kwargs: the remaining :class:`DynamicStage` arguments (nheads, dim_feedforward,
            dropout, dim_dynamic, num_dynamic, num_cls_layers, num_reg_layers,
            bbox_reg_weights, scale_clamp, prior_prob).
    """

    @configurable
    def __init__(
        self, *, in_features, input_shape, num_classes, num_proposals, hidden_dim, num_stages,
        pooler_resolution, pooler_sampling_ratio, pooler_type, criterion, test_topk,
        **stage_kwargs,
    ):
        super().__init__()
        _check_feature_channels(in_features, input_shape, hidden_dim)
        self.in_features = list(in_features)
        self.num_classes = num_classes
        self.test_topk = test_topk
        self.pooler = ROIPooler(
            output_size=pooler_resolution,
            scales=[1.0 / input_shape[f].stride for f in in_features],
            sampling_ratio=pooler_sampling_ratio,
            pooler_type=pooler_type,
        )
        # Proposals are normalized (cx, cy, w, h); all start as the whole image, as in the paper.
        self.proposal_boxes = nn.Embedding(num_proposals, 4)
        nn.init.constant_(self.proposal_boxes.weight[:, :2], 0.5)
        nn.init.constant_(self.proposal_boxes.weight[:, 2:], 1.0)
        self.proposal_features = nn.Embedding(num_proposals, hidden_dim)
        self.stages = nn.ModuleList(
            DynamicStage(
                hidden_dim=hidden_dim, num_classes=num_classes,
                pooler_resolution=pooler_resolution, **stage_kwargs,
            )
            for _ in range(num_stages)
        )
        self.criterion = criterion

    TASKS = (DETECTION,)

    @classmethod
    def from_config(cls, cfg, input_shape, task=DETECTION):
        c = cfg.MODEL.SPARSE_RCNN
        feature_shapes(input_shape, list(c.IN_FEATURES), "MODEL.SPARSE_RCNN.IN_FEATURES")
        criterion = SparseRCNNCriterion(
            class_weight=c.CLASS_WEIGHT, l1_weight=c.L1_WEIGHT, giou_weight=c.GIOU_WEIGHT,
            focal_alpha=c.FOCAL_ALPHA, focal_gamma=c.FOCAL_GAMMA,
            deep_supervision=c.DEEP_SUPERVISION,
        )
        return {
            "in_features": list(c.IN_FEATURES), "input_shape": input_shape,
            "num_classes": c.NUM_CLASSES, "num_proposals": c.NUM_PROPOSALS,
            "hidden_dim": c.HIDDEN_DIM, "num_stages": c.NUM_STAGES,
            "pooler_resolution": c.POOLER_RESOLUTION,
            "pooler_sampling_ratio": c.POOLER_SAMPLING_RATIO, "pooler_type": c.POOLER_TYPE,
            "criterion": criterion, "test_topk": c.TEST_TOPK,
            "nheads": c.NHEADS, "dim_feedforward": c.DIM_FEEDFORWARD, "dropout": c.DROPOUT,
            "dim_dynamic": c.DIM_DYNAMIC, "num_dynamic": c.NUM_DYNAMIC,
            "num_cls_layers": c.NUM_CLS_LAYERS, "num_reg_layers": c.NUM_REG_LAYERS,
            "bbox_reg_weights": tuple(c.BBOX_REG_WEIGHTS), "scale_clamp": c.SCALE_CLAMP,
            "prior_prob": c.PRIOR_PROB,
        }

    def loss_keys(self):
        """The keys of the training losses :meth:`forward` returns."""
        return self.criterion.loss_keys(len(self.stages))

    def forward(self, features, image_sizes, targets=None):
        """
        Args:
            features (dict[str, Tensor]): FPN maps [B, C, Hi, Wi] by name.
            image_sizes (list[tuple[int, int]]): (h, w) of each image before padding.
            targets (list[dict] or None): per image ``labels`` LongTensor[T] and ``boxes``
                [T, 4] XYXY absolute pixels; given in training.

        Returns:
            tuple: ``(None, losses)`` with targets, else ``(list[Instances], {})`` with
            ``pred_boxes`` (XYXY absolute, clipped), ``scores`` and ``pred_classes``.
        """
        # RoIAlign's CPU kernel is several times slower on channels-last maps; one NCHW copy of
        # the pooled levels serves all stages (see BENCHMARKS.md, inference).
        maps = [features[f].contiguous() for f in self.in_features]
        stage_outputs = self._run_stages(maps, image_sizes)
        if targets is not None:
            return None, self.criterion(stage_outputs, self._prepare_targets(targets, image_sizes))
        return self.inference(stage_outputs[-1], image_sizes), {}

    def _run_stages(self, features, image_sizes):
        """All stages from the learned proposals; list of ``{pred_logits, pred_boxes}``."""
        scale = _image_scale(image_sizes, features[0].device)  # [B, 4]
        boxes = box_cxcywh_to_xyxy(self.proposal_boxes.weight)[None] * scale[:, None, :]
        proposal_features = self.proposal_features.weight[None].expand(len(image_sizes), -1, -1)
        stage_outputs = []
        for stage in self.stages:
            logits, pred_boxes, proposal_features = stage(
                features, self.pooler, boxes, proposal_features
            )
            stage_outputs.append({"pred_logits": logits, "pred_boxes": pred_boxes})
            # Each stage learns to refine the boxes it is given, not the earlier stages' boxes.
            boxes = pred_boxes.detach()
        return stage_outputs

    def _prepare_targets(self, targets, image_sizes):
        """Copies of ``targets`` on the head's device, with ``image_scale`` = (w, h, w, h)."""
        device = self.proposal_boxes.weight.device
        scale = _image_scale(image_sizes, device)
        return [
            {
                "labels": t["labels"].to(device=device, dtype=torch.int64),
                "boxes": t["boxes"].to(device=device, dtype=torch.float32).reshape(-1, 4),
                "image_scale": s,
            }
            for t, s in zip(targets, scale)
        ]

    @torch.no_grad()
    def inference(self, outputs, image_sizes):
        """Top-k (proposal, class) pairs by sigmoid score per image; no NMS.

        Args:
            outputs (dict): ``pred_logits`` [B, Q, K] and ``pred_boxes`` [B, Q, 4].
        """
        results = []
        for logits, boxes, size in zip(outputs["pred_logits"], outputs["pred_boxes"], image_sizes):
            scores, index = logits.sigmoid().flatten().topk(min(self.test_topk, logits.numel()))
            pred_boxes = Boxes(boxes[index // self.num_classes])
            pred_boxes.clip(size)
            result = Instances(tuple(size))
            result.pred_boxes = pred_boxes
            result.scores = scores
            result.pred_classes = index % self.num_classes
            results.append(result)
        return results


def _image_scale(image_sizes, device):
    """[(h, w), ...] -> [B, 4] float tensor (w, h, w, h)."""
    return torch.tensor(
        [[w, h, w, h] for h, w in image_sizes], dtype=torch.float32, device=device
    )


def _check_feature_channels(in_features, input_shape, hidden_dim):
    """The dynamic interaction multiplies pooled features by hidden-sized weights."""
    for name in in_features:
        if input_shape[name].channels != hidden_dim:
            raise ValueError(
                f"Sparse R-CNN hidden dim ({hidden_dim}) must equal the channels of {name} "
                f"({input_shape[name].channels}); in a config these are "
                "MODEL.SPARSE_RCNN.HIDDEN_DIM and MODEL.FPN.OUT_CHANNELS"
            )
