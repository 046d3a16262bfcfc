"""Convolutional task heads for the multi-task model (the paper's table 8).

Importing this package registers the heads in lv_adapter's TASK_HEAD_REGISTRY, so that a config
can name them under MODEL.HEADS; the project's train_net.py does that before training.
"""
from conv_heads.semantic_fpn import SemanticFPNHead, dense_targets  # noqa: F401 (registers)
