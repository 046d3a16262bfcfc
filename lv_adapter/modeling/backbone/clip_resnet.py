"""CLIP's ResNet image tower as the bottom-up part of detectron2's FPN.

CLIP's RN50 is no detectron2 ResNet: a stem of three 3x3 convolutions with an average pool,
average-pool downsampling inside the blocks ("anti-aliased" strides) and an attention pool
instead of the global average pool. This backbone runs open_clip's own image trunk, without
the attention pool, and hands its four stages to the FPN as res2..res5 (strides 4..32), so
the weights of CLIP's image tower load as they are, from the same checkpoint as the text encoder.

Images are normalised with CLIP's statistics (RGB): MODEL.PIXEL_MEAN [122.771, 116.746,
104.094], MODEL.PIXEL_STD [68.501, 66.632, 70.323].
"""
import logging

from detectron2.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2.modeling import BACKBONE_REGISTRY, Backbone
from detectron2.modeling.backbone.fpn import FPN, LastLevelMaxPool

from lv_adapter.modeling.clip_loading import create_clip_model

__all__ = ["ClipResNet", "build_clip_resnet_backbone", "build_clip_resnet_fpn_backbone"]

logger = logging.getLogger(__name__)
STAGES = ("res2", "res3", "res4", "res5")  # open_clip's layer1..layer4
NORMS = ("FrozenBN", "BN")


class ClipResNet(Backbone):
    """open_clip's ``ModifiedResNet`` returning its stage outputs.

    Parameter names are open_clip's under ``trunk.`` (``trunk.layer1.0.conv1.weight``).
    """

    def __init__(self, trunk, out_features=STAGES, norm="FrozenBN"):
        """
        Args:
            trunk (nn.Module): open_clip's ``ModifiedResNet`` (``clip_model.visual``). Its
                attention pool and the stages after the last of ``out_features`` are removed.
            out_features (list[str]): which of res2..res5 to return.
            norm (str): "FrozenBN" turns the batch norms into fixed affine maps (pre-trained
                statistics are kept, as for detectron2's ImageNet ResNets); "BN" trains them.
        """
        super().__init__()
        unknown = [f for f in out_features if f not in STAGES]
        if unknown or not out_features:
            raise ValueError(f"MODEL.RESNETS.OUT_FEATURES {list(out_features)}: the CLIP "
                             f"backbone has {list(STAGES)}")
        if norm not in NORMS:
            raise ValueError(f"MODEL.CLIP.NORM must be one of {NORMS}, got {norm!r}")
        if not all(hasattr(trunk, a) for a in ("stem", "layer1", "layer4", "attnpool")):
            raise ValueError(f"{type(trunk).__name__} is no CLIP ResNet image tower (a ViT?); "
                             "MODEL.CLIP.NAME must name a ResNet model such as RN50")
        self._num_stages = 1 + max(STAGES.index(f) for f in out_features)
        trunk.attnpool = None  # the image embedding of CLIP; the FPN needs the feature maps
        for i in range(self._num_stages, len(STAGES)):
            setattr(trunk, f"layer{i + 1}", None)  # unused stages would get no gradient
        if norm == "FrozenBN":
            trunk = FrozenBatchNorm2d.convert_frozen_batchnorm(trunk)
        self.trunk = trunk
        self._out_features = list(out_features)
        self._out_feature_strides = {name: 4 * 2 ** i for i, name in enumerate(STAGES)}
        self._out_feature_channels = {
            STAGES[i]: getattr(trunk, f"layer{i + 1}")[-1].conv3.out_channels
            for i in range(self._num_stages)
        }

    def forward(self, x):
        """
        Args:
            x (Tensor): [N, 3, H, W] normalised images.

        Returns:
            dict[str, Tensor]: ``out_features`` -> [N, C, H / stride, W / stride].
        """
        x = self.trunk.stem(x)  # 3 convolutions and a 2x2 average pool: stride 4
        out = {}
        for i in range(self._num_stages):
            x = getattr(self.trunk, f"layer{i + 1}")(x)
            if STAGES[i] in self._out_features:
                out[STAGES[i]] = x
        return out


@BACKBONE_REGISTRY.register()
def build_clip_resnet_backbone(cfg, input_shape):
    """The CLIP image trunk of MODEL.CLIP.NAME with the weights of MODEL.CLIP.WEIGHTS."""
    if input_shape.channels != 3:
        raise ValueError(f"the CLIP backbone takes RGB images, not {input_shape.channels} channels")
    if cfg.MODEL.BACKBONE.FREEZE_AT != 0:
        raise ValueError("MODEL.BACKBONE.FREEZE_AT must be 0 with the CLIP backbone (freeze it "
                         "with SOLVER.ADAPT_ITERS, its batch norms with MODEL.CLIP.NORM)")
    clip = cfg.MODEL.CLIP
    if not clip.WEIGHTS:
        logger.warning(f"MODEL.CLIP.WEIGHTS is empty: the {clip.NAME} image trunk starts random")
    trunk = create_clip_model(clip.NAME, clip.WEIGHTS).visual
    return ClipResNet(trunk, cfg.MODEL.RESNETS.OUT_FEATURES, clip.NORM)


@BACKBONE_REGISTRY.register()
def build_clip_resnet_fpn_backbone(cfg, input_shape: ShapeSpec):
    """CLIP image trunk + detectron2's FPN (P2..P6), configured like build_resnet_fpn_backbone."""
    return FPN(
        bottom_up=build_clip_resnet_backbone(cfg, input_shape),
        in_features=cfg.MODEL.FPN.IN_FEATURES,
        out_channels=cfg.MODEL.FPN.OUT_CHANNELS,
        norm=cfg.MODEL.FPN.NORM,
        top_block=LastLevelMaxPool(),
        fuse_type=cfg.MODEL.FPN.FUSE_TYPE,
    )
