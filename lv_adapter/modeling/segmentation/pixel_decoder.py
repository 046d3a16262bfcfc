"""MaskFormer's pixel decoder: fuses the FPN levels into one stride-4 per-pixel embedding map."""
import fvcore.nn.weight_init as weight_init
from detectron2.layers import Conv2d, get_norm
from torch import nn
from torch.nn import functional as F


def _conv(in_channels, out_channels, kernel_size, norm, activation=None):
    """Conv (same padding) + optional norm + optional activation, Caffe2-Xavier initialized."""
    conv = Conv2d(
        in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=not norm,
        norm=get_norm(norm, out_channels), activation=activation,
    )
    weight_init.c2_xavier_fill(conv)
    return conv


class PixelDecoder(nn.Module):
    """Top-down fusion of feature maps, finest level last to be fused.

    Starting from the coarsest map (3x3 conv + norm + ReLU), each finer level adds its 1x1-projected
    map to the upsampled running map, followed by a 3x3 conv + norm + ReLU. A final 3x3 conv gives
    the mask features (no activation: they are dotted with the mask embeddings, so they must be
    free to be negative). The backbone's FPN has already mixed the levels once; this second
    top-down pass concentrates everything in the finest map, the one masks are predicted on.

    Args:
        in_channels (list[int]): channels of the input maps, finest first (e.g. p2..p5).
        conv_dim (int): channels of the fused maps.
        mask_dim (int): channels of the mask features.
        norm (str): detectron2 norm name ("GN", "BN", "" for none).
    """

    def __init__(self, in_channels, conv_dim, mask_dim, norm="GN"):
        super().__init__()
        *finer, coarsest = in_channels
        # Coarse to fine, the order of the top-down pass.
        self.lateral_convs = nn.ModuleList(_conv(c, conv_dim, 1, norm) for c in reversed(finer))
        self.output_convs = nn.ModuleList(
            _conv(c, conv_dim, 3, norm, F.relu) for c in [coarsest] + [conv_dim] * len(finer)
        )
        self.mask_features = _conv(conv_dim, mask_dim, 3, norm="")

    def forward(self, features):
        """
        Args:
            features (list[Tensor]): [B, C_i, H_i, W_i] maps, finest first, each level half the
                size of the previous one.

        Returns:
            Tensor: [B, mask_dim, H_0, W_0] mask features at the finest level's resolution.
        """
        *finer, coarsest = features
        y = self.output_convs[0](coarsest)
        for feature, lateral, output in zip(reversed(finer), self.lateral_convs,
                                            self.output_convs[1:]):
            y = lateral(feature) + F.interpolate(y, size=feature.shape[-2:], mode="nearest")
            y = output(y)
        return self.mask_features(y)
