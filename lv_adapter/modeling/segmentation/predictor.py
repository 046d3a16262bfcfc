"""MaskFormer's transformer predictor: learned queries -> class logits and mask embeddings."""
import fvcore.nn.weight_init as weight_init
import torch
from detectron2.layers import Conv2d
from torch import nn

from lv_adapter.modeling.layers import MLP, TransformerDecoderLayer, sine_position_embedding


class MaskFormerPredictor(nn.Module):
    """A transformer decoder whose queries attend to one feature map (the memory).

    After every decoder layer the queries (through a shared LayerNorm) predict a class
    distribution over K classes + "no object" and a mask embedding; the mask logits are the dot
    products of the mask embedding with each pixel of the mask features.

    Args:
        in_channels (int): channels of the memory map; projected by a 1x1 conv when they differ
            from ``hidden_dim``.
        num_classes (int): K.
        num_queries (int): Q.
        hidden_dim, num_heads, num_layers, ffn_dim (int): decoder sizes.
        dropout (float): decoder dropout.
        mask_dim (int): channels of the mask features and mask embeddings.
    """

    def __init__(self, *, in_channels, num_classes, num_queries, hidden_dim, num_heads,
                 num_layers, ffn_dim, dropout, mask_dim):
        super().__init__()
        self.input_proj = nn.Identity()
        if in_channels != hidden_dim:
            self.input_proj = Conv2d(in_channels, hidden_dim, kernel_size=1)
            weight_init.c2_xavier_fill(self.input_proj)
        # Learned query content and learned query position, both [Q, hidden].
        self.query_feat = nn.Embedding(num_queries, hidden_dim)
        self.query_pos = nn.Embedding(num_queries, hidden_dim)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(hidden_dim, num_heads, ffn_dim, dropout)
            for _ in range(num_layers)
        )
        self.decoder_norm = nn.LayerNorm(hidden_dim)
        self.class_head = nn.Linear(hidden_dim, num_classes + 1)
        self.mask_head = MLP(hidden_dim, hidden_dim, mask_dim, 3)

    def forward(self, memory, mask_features):
        """
        Args:
            memory (Tensor): [B, C, h, w] map the queries attend to (e.g. p5).
            mask_features (Tensor): [B, mask_dim, H, W] per-pixel embeddings.

        Returns:
            list[dict]: in training one per decoder layer (deep supervision), last layer last; in
            eval mode only the last layer's. Each is
            ``{"pred_logits": [B, Q, K + 1], "pred_masks": [B, Q, H, W]}``.
        """
        memory = self.input_proj(memory)
        batch, dim, height, width = memory.shape
        memory_pos = sine_position_embedding(height, width, dim, device=memory.device)
        memory_pos = memory_pos[None].to(memory.dtype)  # [1, h * w, hidden]
        memory = memory.flatten(2).transpose(1, 2)  # [B, h * w, hidden], row-major like the pos
        query = self.query_feat.weight[None].expand(batch, -1, -1)
        query_pos = self.query_pos.weight[None]
        outputs = []
        for index, layer in enumerate(self.layers):
            query = layer(query, memory, query_pos, memory_pos)
            # Intermediate predictions only feed the auxiliary losses; at inference each would
            # cost a [Q, H/4, W/4] mask product for nothing (~25 ms per layer at 1280x720).
            if self.training or index == len(self.layers) - 1:
                outputs.append(self.predict(query, mask_features))
        return outputs

    def predict(self, query, mask_features):
        """[B, Q, hidden] decoder output -> ``{"pred_logits", "pred_masks"}`` (see forward)."""
        query = self.decoder_norm(query)
        mask_embed = self.mask_head(query)
        return {
            "pred_logits": self.class_head(query),
            "pred_masks": torch.einsum("bqd,bdhw->bqhw", mask_embed, mask_features),
        }
