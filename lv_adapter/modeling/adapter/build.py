"""The adapter slot between the FPN and the task heads.

An adapter maps the FPN's feature dict to a feature dict of the same names and shapes. The
default passes features through unchanged; the LV-Adapter (language-guided update of P5) plugs
in here through ``MODEL.ADAPTER.NAME``.
"""
from detectron2.utils.registry import Registry
from torch import nn

ADAPTER_REGISTRY = Registry("ADAPTER")
ADAPTER_REGISTRY.__doc__ = """
Adapters between the FPN and the heads. Called as ``cls(cfg, input_shape)`` with the FPN's
``dict[str, ShapeSpec]``; ``forward(features)`` returns a dict with the same keys and shapes.
"""


@ADAPTER_REGISTRY.register()
class IdentityAdapter(nn.Module):
    """No adaptation: the heads see the FPN features as they are."""

    def __init__(self, cfg=None, input_shape=None):
        super().__init__()

    def forward(self, features):
        return features


def build_adapter(cfg, input_shape):
    """Build the adapter named by ``cfg.MODEL.ADAPTER.NAME``."""
    return ADAPTER_REGISTRY.get(cfg.MODEL.ADAPTER.NAME)(cfg, input_shape)
