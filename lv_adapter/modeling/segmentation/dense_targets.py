"""Per-pixel label maps from the mask tasks' targets, for heads that classify every pixel
(projects/ConvHeads' Semantic FPN, projects/LaneMarking's dense lane head)."""
import torch

from lv_adapter.tasks import IGNORE_LABEL

__all__ = ["dense_targets"]


def dense_targets(targets):
    """Per-image ``{"labels": [T], "masks": [T, H, W]}`` -> a [B, H, W] long label map (255
    where no mask covers a pixel: ignored and padding pixels)."""
    maps = []
    for target in targets:
        masks, labels = target["masks"], target["labels"]
        label_map = torch.full(masks.shape[-2:], IGNORE_LABEL, dtype=torch.long,
                               device=masks.device)
        for label, mask in zip(labels, masks):  # the masks of an image do not overlap
            label_map[mask] = label
        maps.append(label_map)
    return torch.stack(maps)
