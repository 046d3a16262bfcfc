"""Pixel decoders: fuse the FPN levels into one stride-4 per-pixel embedding map (mask features).

Two, with the same constructor and forward, chosen per head by ``PIXEL_DECODER`` (a key of
:data:`PIXEL_DECODERS`): MaskFormer's own, and a lighter one for CPUs.
"""
import fvcore.nn.weight_init as weight_init
from detectron2.layers import Conv2d, get_norm
from torch import nn
from torch.nn import functional as F


def _conv(in_channels, out_channels, kernel_size, norm="", activation=None):
    """Conv (same padding) + optional norm + optional activation, Caffe2-Xavier initialized."""
    conv = Conv2d(
        in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not norm,
        norm=get_norm(norm, out_channels), activation=activation,
    )
    weight_init.c2_xavier_fill(conv)
    return conv


class LightPixelDecoder(nn.Module):
    """Sum of the FPN levels at the finest resolution, then a 1x1 projection to mask features.

    MaskFormer's own pixel decoder (:class:`MaskFormerPixelDecoder`) is a top-down FPN over raw
    ResNet stages. Here the backbone already is a ResNet + FPN, whose levels were fused top-down
    and smoothed by 3x3 convs, so a second FPN repeats much of that work: its two 3x3 convs at
    stride 4 cost about 1 s of the 3.3 s a 1280x720 image took on 2 CPU cores (see
    BENCHMARKS.md). Instead every level is projected
    (1x1, only where its channels differ from ``conv_dim``) and the levels are summed coarse to
    fine, each partial sum upsampled bilinearly to the next level's size, so only one
    upsampling and one addition run at the finest resolution. The sum is normalized and
    projected (1x1) to ``mask_dim``. The mask features have no activation: they are dotted with
    the mask embeddings, so they must be free to be negative.

    Args:
        in_channels (list[int]): channels of the input maps, finest first (e.g. p2..p5).
        conv_dim (int): channels of the fused map.
        mask_dim (int): channels of the mask features.
        norm (str): detectron2 norm name ("GN", "BN", "" for none) after the sum.
    """

    def __init__(self, in_channels, conv_dim, mask_dim, norm="GN"):
        super().__init__()
        self.laterals = nn.ModuleList(
            nn.Identity() if c == conv_dim else _conv(c, conv_dim, 1) for c in in_channels
        )
        self.fuse = nn.Sequential(get_norm(norm, conv_dim) or nn.Identity(), nn.ReLU(inplace=True))
        self.mask_features = _conv(conv_dim, mask_dim, 1)

    def forward(self, features):
        """
        Args:
            features (list[Tensor]): [B, C_i, H_i, W_i] maps, finest first.

        Returns:
            Tensor: [B, mask_dim, H_0, W_0] mask features at the finest level's resolution.
        """
        fused = self.laterals[-1](features[-1])
        for feature, lateral in zip(features[-2::-1], self.laterals[-2::-1]):
            fused = lateral(feature) + F.interpolate(
                fused, size=feature.shape[-2:], mode="bilinear", align_corners=False
            )
        return self.mask_features(self.fuse(fused))


class MaskFormerPixelDecoder(nn.Module):
    """MaskFormer's pixel decoder: a top-down path of 3x3 convs, then a 3x3 mask-feature conv.

    From the coarsest level down, each level's lateral (1x1 conv + norm; none on the coarsest)
    is added to the nearest-upsampled map from the level above, and the sum goes through a 3x3
    conv + norm + ReLU. The finest result goes through a 3x3 conv to ``mask_dim`` (no norm, no
    activation: the mask features are dotted with the mask embeddings and may be negative).
    Costlier than :class:`LightPixelDecoder` (3x3 convs at every level, two at stride 4), and
    what the paper's MaskFormer heads use.

    Args:
        in_channels (list[int]): channels of the input maps, finest first (e.g. p2..p5).
        conv_dim (int): channels of the top-down path.
        mask_dim (int): channels of the mask features.
        norm (str): detectron2 norm name ("GN", "BN", "" for none) of the laterals and convs.
    """

    def __init__(self, in_channels, conv_dim, mask_dim, norm="GN"):
        super().__init__()
        self.laterals = nn.ModuleList(_conv(c, conv_dim, 1, norm) for c in in_channels[:-1])
        self.laterals.append(nn.Identity())  # the coarsest level has nothing to add to
        self.outputs = nn.ModuleList(
            _conv(c, conv_dim, 3, norm, F.relu)
            for c in [conv_dim] * (len(in_channels) - 1) + [in_channels[-1]]
        )
        self.mask_features = _conv(conv_dim, mask_dim, 3)

    def forward(self, features):
        """[B, C_i, H_i, W_i] maps, finest first -> [B, mask_dim, H_0, W_0] mask features (as
        :meth:`LightPixelDecoder.forward`)."""
        fused = self.outputs[-1](features[-1])
        for feature, lateral, output in zip(
            features[-2::-1], self.laterals[-2::-1], self.outputs[-2::-1]
        ):
            upsampled = F.interpolate(fused, size=feature.shape[-2:], mode="nearest")
            fused = output(lateral(feature) + upsampled)
        return self.mask_features(fused)


# PIXEL_DECODER config value -> class; both take (in_channels, conv_dim, mask_dim, norm).
PIXEL_DECODERS = {"light": LightPixelDecoder, "maskformer": MaskFormerPixelDecoder}
