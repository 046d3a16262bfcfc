"""The LV-Adapter: the task text features update P5, and the FPN's top block re-derives P6.

    T  = LayerNorm + Linear (text features of all the model's tasks, in MODEL.TASKS order)
    T  = T + s_v2l * TransDecoder(q=T, k=v=z5)               (V2L, optional)
    z5 = z5 + s_l2v * TransDecoder(q=z5 + pos, k=v=T)         (L2V; score-map fusion if off)
    p6, ... = top_block(z5)

Every head then sees language-aware features; p2..p4 are returned as the very same tensors.
"""
import torch
from detectron2.config import configurable
from torch import nn

from lv_adapter.modeling.adapter.build import ADAPTER_REGISTRY
from lv_adapter.modeling.adapter.l2v import ResidualDecoder, TextScoreFusion
from lv_adapter.modeling.adapter.text_features import FileTextFeatures, LiveTextFeatures
from lv_adapter.modeling.layers import sine_position_embedding
from lv_adapter.tasks import get_task

__all__ = ["LVAdapter"]


def _build_task_prompts(cfg, tasks):
    # Imported here: a model given a text features file never loads the text-encoder modules.
    from lv_adapter.modeling.adapter.prompts import build_task_prompts

    return build_task_prompts(cfg, tasks)


def _class_counts(cfg, tasks):
    """task -> number of classes of its head, in ``tasks`` order."""
    return {task: get_task(task).num_classes(cfg) for task in tasks}


@ADAPTER_REGISTRY.register()
class LVAdapter(nn.Module):
    """Language-guided update of the FPN's P5 map (the paper's L2V, with optional V2L)."""

    @configurable
    def __init__(self, *, text, language_to_vision, vision_to_language=None, input_shape,
                 top_block=None, in_feature="p5"):
        """
        Args:
            text (nn.Module): ``forward() -> {task: [C_task, D]}`` with ``output_dim`` = D and
                ``class_counts`` (task -> C_task, in the order the features are concatenated):
                :class:`LiveTextFeatures` or :class:`FileTextFeatures`.
            language_to_vision (nn.Module): ``(tokens [B, HW, C], texts [B, K, C], pos) ->
                tokens``: :class:`ResidualDecoder` (L2V) or :class:`TextScoreFusion`.
            vision_to_language (nn.Module or None): ``(texts, tokens, None, pos) -> texts``.
            input_shape (dict[str, ShapeSpec]): the FPN's outputs, in level order.
            top_block (nn.Module or None): the FPN's top block. If it reads ``in_feature``, its
                outputs (the last ``num_levels`` FPN levels) are recomputed from the updated map.
                It is kept as a reference, not a submodule: it belongs to the backbone.
            in_feature (str): the map to update.
        """
        super().__init__()
        if in_feature not in input_shape:
            raise ValueError(f"LVAdapter updates {in_feature!r}; the FPN gives {list(input_shape)}")
        self.in_feature = in_feature
        self.text = text
        dim = input_shape[in_feature].channels
        width = text.output_dim
        self.text_proj = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))
        self.vision_to_language = vision_to_language
        self.language_to_vision = language_to_vision
        self._top_block = [top_block]  # a list: nn.Module would register it as a submodule
        self.top_levels = _top_levels(list(input_shape), in_feature, top_block)

    @classmethod
    def from_config(cls, cfg, input_shape, top_block=None):
        node = cfg.MODEL.ADAPTER
        dim = input_shape["p5"].channels
        _check_config(node, dim)
        counts = _class_counts(cfg, cfg.MODEL.TASKS)
        if node.TEXT_FEATURES_FILE:
            encoder = node.get("TEXT_ENCODER")
            text = FileTextFeatures(node.TEXT_FEATURES_FILE, counts, dict(encoder or {}))
        else:
            text = LiveTextFeatures(_build_task_prompts(cfg, list(counts)), counts)
        l2v, v2l = node.L2V, node.V2L

        def decoder(num_layers):
            return ResidualDecoder(dim, num_layers, l2v.NHEADS, l2v.DIM_FEEDFORWARD, l2v.DROPOUT,
                                   l2v.INIT_SCALE)

        return {
            "text": text,
            "language_to_vision": decoder(l2v.NUM_LAYERS) if l2v.ENABLED
            else TextScoreFusion(dim, sum(counts.values()), l2v.INIT_SCALE),
            "vision_to_language": decoder(v2l.NUM_LAYERS) if v2l.ENABLED else None,
            "input_shape": input_shape,
            "top_block": top_block,
        }

    def forward(self, features):
        """
        Args:
            features (dict[str, Tensor]): the FPN's maps, name -> [B, C, H_l, W_l].

        Returns:
            dict[str, Tensor]: the same keys; ``in_feature`` updated, the top block's levels
            recomputed from it, every other entry the input tensor itself.
        """
        z5 = features[self.in_feature]
        b, c, h, w = z5.shape
        tokens = z5.flatten(2).transpose(1, 2)  # [B, HW, C]
        pos = sine_position_embedding(h, w, c, z5.device).to(tokens.dtype)[None]
        texts = self.text_features()[None].expand(b, -1, -1)  # [B, K, C]
        if self.vision_to_language is not None:
            texts = self.vision_to_language(texts, tokens, None, pos)
        tokens = self.language_to_vision(tokens, texts, pos, None)
        out = dict(features)
        # A view, no copy: [B, HW, C] read as [B, C, H, W] is the channels-last layout.
        out[self.in_feature] = tokens.transpose(1, 2).reshape(b, c, h, w)
        if self.top_levels:
            out.update(zip(self.top_levels, self._top_block[0](out[self.in_feature])))
        return out

    def text_features(self):
        """[K, C]: every task's text features, projected to the FPN width, in task order."""
        features = self.text()
        return self.text_proj(torch.cat([features[t] for t in self.text.class_counts]))


def _top_levels(names, in_feature, top_block):
    """Names of the FPN levels that ``top_block`` derives from ``in_feature`` (maybe none)."""
    later = names[names.index(in_feature) + 1:]
    if top_block is None:
        if later:
            raise ValueError(
                f"LVAdapter changes {in_feature} and must recompute {later} from it with the "
                "FPN's top block: build it with build_adapter(cfg, shape, top_block=...)"
            )
        return []
    if top_block.in_feature != in_feature:  # e.g. P6/P7 from res5: they do not depend on P5
        return []
    if len(later) != top_block.num_levels:
        raise ValueError(f"the FPN's top block makes {top_block.num_levels} levels, "
                         f"but the FPN lists {later} after {in_feature}")
    return later


def _check_config(node, dim):
    l2v, v2l = node.L2V, node.V2L
    if dim % l2v.NHEADS:
        raise ValueError(f"MODEL.ADAPTER.L2V.NHEADS ({l2v.NHEADS}) must divide the FPN width {dim}")
    if dim % 4:
        raise ValueError(f"LVAdapter needs an FPN width divisible by 4 (position code), got {dim}")
    for key, part in (("L2V", l2v), ("V2L", v2l)):
        if part.ENABLED and part.NUM_LAYERS < 1:
            raise ValueError(f"MODEL.ADAPTER.{key}.NUM_LAYERS must be >= 1 when it is enabled, "
                             f"got {part.NUM_LAYERS}")
