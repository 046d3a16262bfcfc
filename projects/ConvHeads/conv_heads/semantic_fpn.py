"""A convolutional segmentation head for the semantic and drivable-area tasks: Semantic FPN.

The head of Panoptic FPN (Kirillov et al., CVPR 2019), as detectron2 ships it
(``SemSegFPNHead``): every FPN level goes through 3x3 conv + norm + ReLU (+ 2x upsampling) steps
down to the finest level's stride, the levels are summed, a 1x1 convolution predicts per-pixel
class logits, and a per-pixel cross-entropy (255 ignored) trains it. No queries, no attention,
no matching: the convolutional counterpart of the MaskFormer head for the paper's table 8.

It reads the task's own head node (``MODEL.SEMANTIC_HEAD``, ``MODEL.DRIVABLE_HEAD``, a project's):
``IN_FEATURES`` (the FPN levels; the finest sets the output stride), ``NUM_CLASSES``,
``CONVS_DIM`` (the width of the conv steps) and ``NORM``. Select it with
``MODEL.HEADS.SEMANTIC "SemanticFPNHead"`` (and/or ``MODEL.HEADS.DRIVABLE``).
"""
from detectron2.config import configurable
from detectron2.modeling.meta_arch.semantic_seg import SemSegFPNHead
from torch import nn
from torch.nn import functional as F

from lv_adapter.modeling.segmentation.dense_targets import dense_targets
from lv_adapter.modeling.task_heads import TASK_HEAD_REGISTRY, feature_shapes
from lv_adapter.tasks import IGNORE_LABEL, MaskTask, get_task

__all__ = ["SemanticFPNHead", "dense_targets"]


@TASK_HEAD_REGISTRY.register()
class SemanticFPNHead(nn.Module):
    """Per-pixel classification from the FPN, for one segmentation task.

    Args:
        task (str): "semantic" or "drivable"; names the loss ``loss_<task>_ce``.
        fpn_head (SemSegFPNHead): detectron2's head: features -> [B, K, H/s, W/s] logits.
    """

    TASK_KINDS = (MaskTask,)  # semantic, drivable, and any project's mask task

    @configurable
    def __init__(self, *, task, fpn_head):
        super().__init__()
        self.task = task
        self.fpn_head = fpn_head

    @classmethod
    def from_config(cls, cfg, input_shape, task):
        node_name = get_task(task).head_node
        node = cfg.MODEL[node_name]
        shapes = feature_shapes(input_shape, node.IN_FEATURES, f"MODEL.{node_name}.IN_FEATURES")
        return {
            "task": task,
            "fpn_head": SemSegFPNHead(
                input_shape=shapes, num_classes=node.NUM_CLASSES, conv_dims=node.CONVS_DIM,
                common_stride=min(shape.stride for shape in shapes.values()),
                norm=node.NORM, ignore_value=IGNORE_LABEL,
            ),
        }

    def forward(self, features, targets=None):
        """
        Args:
            features (dict[str, Tensor]): FPN maps [B, C, H_i, W_i], holding the head's levels.
            targets (list[dict] or None): training only; per image ``{"labels": LongTensor[T],
                "masks": BoolTensor[T, H, W]}`` at the padded input resolution (the task's
                contract, shared with the MaskFormer head).

        Returns:
            tuple: training ``(None, {"loss_<task>_ce": scalar})``; inference ``([B, K, H, W]
            per-class probabilities at the padded input resolution, {})``.
        """
        if self.training:
            if targets is None:
                raise ValueError(f"the {self.task} head needs targets in training mode")
            _, losses = self.fpn_head(features, dense_targets(targets))
            return None, {f"loss_{self.task}_ce": losses["loss_sem_seg"]}
        logits, _ = self.fpn_head(features)
        return F.softmax(logits, dim=1), {}

    def loss_keys(self):
        """The keys of the training losses (for logging zeros when a batch lacks this task)."""
        return [f"loss_{self.task}_ce"]
