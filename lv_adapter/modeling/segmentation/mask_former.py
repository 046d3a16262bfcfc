"""The MaskFormer head used for semantic and drivable-area segmentation.

FPN maps -> pixel decoder (stride-4 mask features) and transformer predictor (queries attending to
p5) -> per layer class logits + mask logits -> set loss (training) or per-class semantic scores
(inference).
"""
from detectron2.config import configurable
from torch import nn

from lv_adapter.modeling.segmentation.criterion import MaskFormerCriterion
from lv_adapter.modeling.segmentation.inference import UPSAMPLE_ORDERS, semantic_inference
from lv_adapter.modeling.segmentation.pixel_decoder import PIXEL_DECODERS
from lv_adapter.modeling.segmentation.predictor import MaskFormerPredictor
from lv_adapter.modeling.task_heads import TASK_HEAD_REGISTRY, feature_shapes
from lv_adapter.tasks import MaskTask, get_task


@TASK_HEAD_REGISTRY.register()
class MaskFormerHead(nn.Module):
    """MaskFormer on the FPN of the shared backbone, for one segmentation task.

    Args:
        task (str): "semantic" or "drivable"; names the losses ``loss_<task>_*``.
        num_classes (int): K.
        pixel_decoder (nn.Module): fuses ``in_features`` into mask features (one of
            :data:`PIXEL_DECODERS`).
        predictor (MaskFormerPredictor): decodes queries from ``transformer_in_feature``.
        criterion (MaskFormerCriterion): the set loss.
        in_features (list[str]): FPN maps for the pixel decoder, finest first.
        transformer_in_feature (str): the map the queries attend to.
        mask_stride (int): stride of the mask features (the finest in_feature's), by which
            inference upsamples back to the padded input size.
        inference_upsample (str): "masks" (MaskFormer's order) or "scores"; see
            :func:`semantic_inference`.
    """

    TASK_KINDS = (MaskTask,)  # semantic, drivable, and any project's mask task

    @configurable
    def __init__(self, *, task, num_classes, pixel_decoder, predictor, criterion, in_features,
                 transformer_in_feature="p5", mask_stride=4, inference_upsample="masks"):
        super().__init__()
        self.task = task
        self.num_classes = num_classes
        self.pixel_decoder = pixel_decoder
        self.predictor = predictor
        self.criterion = criterion
        self.in_features = list(in_features)
        self.transformer_in_feature = transformer_in_feature
        self.mask_stride = mask_stride
        self.inference_upsample = inference_upsample

    @classmethod
    def from_config(cls, cfg, input_shape, task):
        """input_shape: dict[str, ShapeSpec] of the FPN maps; task: a mask task's name (its
        head node, ``MODEL.<head_node>``, holds the keys)."""
        node_name = get_task(task).head_node
        node = cfg.MODEL[node_name]
        for key, choices in (("PIXEL_DECODER", PIXEL_DECODERS),
                             ("INFERENCE_UPSAMPLE", UPSAMPLE_ORDERS)):
            if node[key] not in choices:
                raise ValueError(f"MODEL.{node_name}.{key} is {node[key]!r}; "
                                 f"choose from {sorted(choices)}")
        prefix = f"MODEL.{node_name}"
        feature_shapes(input_shape, list(node.IN_FEATURES), f"{prefix}.IN_FEATURES")
        feature_shapes(input_shape, [node.TRANSFORMER_IN_FEATURE],
                       f"{prefix}.TRANSFORMER_IN_FEATURE")
        in_features = sorted(node.IN_FEATURES, key=lambda name: input_shape[name].stride)
        return {
            "task": task,
            "num_classes": node.NUM_CLASSES,
            "pixel_decoder": PIXEL_DECODERS[node.PIXEL_DECODER](
                [input_shape[name].channels for name in in_features],
                conv_dim=node.CONVS_DIM, mask_dim=node.MASK_DIM, norm=node.NORM,
            ),
            "predictor": _build_predictor(node, input_shape[node.TRANSFORMER_IN_FEATURE].channels),
            "criterion": _build_criterion(node, task),
            "in_features": in_features,
            "transformer_in_feature": node.TRANSFORMER_IN_FEATURE,
            "mask_stride": input_shape[in_features[0]].stride,
            "inference_upsample": node.INFERENCE_UPSAMPLE,
        }

    def forward(self, features, targets=None):
        """
        Args:
            features (dict[str, Tensor]): FPN maps [B, C, H_i, W_i], holding ``in_features`` and
                ``transformer_in_feature``.
            targets (list[dict] or None): training only; per image ``{"labels": LongTensor[T],
                "masks": BoolTensor[T, H, W]}`` at the padded input resolution: one mask per
                class present; ignored (255) and padding pixels belong to no mask.

        Returns:
            tuple: training ``(None, {"loss_<task>_<term>[_<layer>]": scalar})``; inference
            ``([B, K, H, W] per-class scores at the padded input resolution, {})``.
        """
        mask_features = self.pixel_decoder([features[name] for name in self.in_features])
        outputs = self.predictor(features[self.transformer_in_feature], mask_features)
        if self.training:
            if targets is None:
                raise ValueError(f"the {self.task} head needs targets in training mode")
            return None, self.criterion(outputs, targets)
        size = [side * self.mask_stride for side in mask_features.shape[-2:]]
        last = outputs[-1]
        return semantic_inference(
            last["pred_logits"], last["pred_masks"], size, self.inference_upsample
        ), {}

    def loss_keys(self):
        """The keys of the training losses (for logging zeros when a batch lacks this task)."""
        return self.criterion.loss_keys(len(self.predictor.layers))


def _build_predictor(node, in_channels):
    """The transformer predictor from a head's config node."""
    return MaskFormerPredictor(
        in_channels=in_channels,
        num_classes=node.NUM_CLASSES,
        num_queries=node.NUM_QUERIES,
        hidden_dim=node.HIDDEN_DIM,
        num_heads=node.NHEADS,
        num_layers=node.DEC_LAYERS,
        ffn_dim=node.DIM_FEEDFORWARD,
        dropout=node.DROPOUT,
        mask_dim=node.MASK_DIM,
    )


def _build_criterion(node, task):
    """The set loss from a head's config node."""
    return MaskFormerCriterion(
        task,
        node.NUM_CLASSES,
        weights={"class": node.CLASS_WEIGHT, "mask": node.MASK_WEIGHT, "dice": node.DICE_WEIGHT},
        no_object_weight=node.NO_OBJECT_WEIGHT,
        deep_supervision=node.DEEP_SUPERVISION,
        focal_alpha=node.FOCAL_ALPHA,
        focal_gamma=node.FOCAL_GAMMA,
        loss_stride=node.LOSS_STRIDE,
        ignored_as_negatives=node.IGNORED_PIXELS_AS_NEGATIVES,
    )
