"""The project's config keys: the dense lane head's background weight, in the lane head node
(``MODEL.LANE_HEAD``, which lv_adapter makes for every mask task)."""
from lv_adapter.config import register_project_config


@register_project_config
def add_lane_config(cfg):
    """Add ``MODEL.LANE_HEAD.BACKGROUND_WEIGHT`` (in place)."""
    # Cross-entropy weight of the background category in LaneDenseHead: lanes cover a few
    # percent of the pixels, so at 1.0 background would dominate the loss.
    cfg.MODEL.LANE_HEAD.BACKGROUND_WEIGHT = 0.2
