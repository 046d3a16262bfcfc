"""One Sparse R-CNN stage (Sun et al., CVPR 2021, Sec. 3.3 and Fig. 3).

A stage pools RoI features of the current boxes, lets the proposals attend to each other,
mixes each proposal's feature with its own RoI feature through convolution parameters that the
proposal feature generates ("dynamic instance interaction"), and predicts class logits and a
refinement of its box.
"""
import math

import torch
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import Boxes
from torch import nn
from torch.nn import functional as F

from lv_adapter.modeling.layers import FFN, Attention


class DynamicInteraction(nn.Module):
    """Dynamic instance interaction: per-proposal 1x1 convolutions on its RoI feature.

    The proposal feature generates the weights of ``num_dynamic`` 1x1 convolutions
    (hidden -> dim_dynamic -> ... -> hidden), each followed by LayerNorm + ReLU; the result is
    flattened over the RoI and projected back to ``hidden_dim``.
    """

    def __init__(self, hidden_dim, dim_dynamic, num_dynamic, pooler_resolution):
        super().__init__()
        if num_dynamic < 1:
            raise ValueError(f"num_dynamic must be >= 1, got {num_dynamic}")
        dims = [hidden_dim] + [dim_dynamic] * (num_dynamic - 1) + [hidden_dim]
        self.shapes = list(zip(dims[:-1], dims[1:]))
        self.param_generator = nn.Linear(hidden_dim, sum(a * b for a, b in self.shapes))
        self.norms = nn.ModuleList(nn.LayerNorm(out_dim) for _, out_dim in self.shapes)
        self.out_proj = nn.Linear(hidden_dim * pooler_resolution**2, hidden_dim)
        self.out_norm = nn.LayerNorm(hidden_dim)

    def forward(self, proposal_features, roi_features):
        """proposal_features: [N, C]; roi_features: [N, C, R, R] -> [N, C]."""
        x = roi_features.flatten(2).transpose(1, 2)  # [N, R*R, C]: a 1x1 conv is a matmul
        params = self.param_generator(proposal_features).split(
            [a * b for a, b in self.shapes], dim=1
        )
        for (in_dim, out_dim), weight, norm in zip(self.shapes, params, self.norms):
            x = F.relu(norm(torch.bmm(x, weight.view(-1, in_dim, out_dim))))
        return F.relu(self.out_norm(self.out_proj(x.flatten(1))))


def _tower(dim, num_layers):
    """``num_layers`` x (Linear without bias, LayerNorm, ReLU): the cls and reg towers."""
    layers = []
    for _ in range(num_layers):
        layers += [nn.Linear(dim, dim, bias=False), nn.LayerNorm(dim), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


class DynamicStage(nn.Module):
    """One refinement stage.

    Args:
        hidden_dim (int): proposal feature size; must equal the pooled feature channels.
        num_classes (int): K, classes scored with a sigmoid each (no background class).
        nheads, dim_feedforward, dropout: self-attention and FFN sizes.
        dim_dynamic, num_dynamic, pooler_resolution: see :class:`DynamicInteraction`.
        num_cls_layers, num_reg_layers (int): depth of the class and box towers.
        bbox_reg_weights (tuple[float]): (wx, wy, ww, wh) of the box delta parametrization.
        scale_clamp (float): upper bound of the predicted log width/height change.
        prior_prob (float): initial foreground probability of every class.
    """

    def __init__(
        self, *, hidden_dim, num_classes, nheads, dim_feedforward, dropout, dim_dynamic,
        num_dynamic, pooler_resolution, num_cls_layers, num_reg_layers, bbox_reg_weights,
        scale_clamp, prior_prob,
    ):
        super().__init__()
        self.self_attn = Attention(hidden_dim, nheads, dropout)
        self.interaction = DynamicInteraction(
            hidden_dim, dim_dynamic, num_dynamic, pooler_resolution
        )
        self.interaction_dropout = nn.Dropout(dropout)
        self.interaction_norm = nn.LayerNorm(hidden_dim)
        self.ffn = FFN(hidden_dim, dim_feedforward, dropout)
        self.cls_tower = _tower(hidden_dim, num_cls_layers)
        self.reg_tower = _tower(hidden_dim, num_reg_layers)
        self.class_logits = nn.Linear(hidden_dim, num_classes)
        self.bbox_deltas = nn.Linear(hidden_dim, 4)
        self.box_transform = Box2BoxTransform(bbox_reg_weights, scale_clamp=scale_clamp)
        self._reset_parameters(prior_prob)

    def _reset_parameters(self, prior_prob):
        # Xavier for every weight matrix (Linear and attention projections); the class bias
        # starts every score at prior_prob so the many negatives do not swamp the focal loss.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
        nn.init.constant_(self.class_logits.bias, -math.log((1 - prior_prob) / prior_prob))

    def forward(self, features, pooler, boxes, proposal_features):
        """
        Args:
            features (list[Tensor]): FPN maps [B, C, Hi, Wi], finest first, matching ``pooler``.
            pooler (ROIPooler): pools ``features`` over boxes given in absolute pixels.
            boxes (Tensor): [B, Q, 4] current XYXY boxes, absolute pixels.
            proposal_features (Tensor): [B, Q, C].

        Returns:
            tuple: class logits [B, Q, K], refined boxes [B, Q, 4], proposal features [B, Q, C].
        """
        batch, num_proposals, dim = proposal_features.shape
        # Under CUDA autocast the FPN maps are fp16, torchvision's RoIAlign runs in fp32, and
        # detectron2's ROIPooler writes its results into a buffer of the maps' dtype, which
        # fails: pool fp32 maps (a no-op without autocast).
        maps = [f.float() for f in features]
        roi_features = pooler(maps, [Boxes(b) for b in boxes])  # [B*Q, C, R, R]
        x = self.self_attn(proposal_features, proposal_features).reshape(-1, dim)
        x = self.interaction_norm(
            x + self.interaction_dropout(self.interaction(x, roi_features))
        )
        x = self.ffn(x)  # [B*Q, C]
        logits = self.class_logits(self.cls_tower(x))
        deltas = self.bbox_deltas(self.reg_tower(x))
        new_boxes = self.box_transform.apply_deltas(deltas, boxes.reshape(-1, 4))
        return (
            logits.view(batch, num_proposals, -1),
            new_boxes.view(batch, num_proposals, 4),
            x.view(batch, num_proposals, dim),
        )
