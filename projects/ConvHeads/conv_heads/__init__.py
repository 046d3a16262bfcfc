"""Convolutional task heads for the multi-task model (the paper's table 8).

Importing this package registers the heads in lv_adapter's TASK_HEAD_REGISTRY and the
project's config keys (MODEL.FCOS) with lv_adapter's build_config, so that a config can name the
heads under MODEL.HEADS; the project's train_net.py does that before training.
"""
from conv_heads.config import add_conv_heads_config  # noqa: F401 (registers MODEL.FCOS)
from conv_heads.fcos import FCOSDetectionHead  # noqa: F401 (registers)
from conv_heads.semantic_fpn import SemanticFPNHead, dense_targets  # noqa: F401 (registers)
