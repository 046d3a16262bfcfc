"""The adapter slot between the FPN and the task heads.

An adapter maps the FPN's feature dict to a feature dict of the same names and shapes. The
default passes features through unchanged; the LV-Adapter (language-guided update of P5) plugs
in here through ``MODEL.ADAPTER.NAME``.
"""
from detectron2.utils.registry import Registry
from torch import nn

from lv_adapter.utils.registry import lookup

ADAPTER_REGISTRY = Registry("ADAPTER")
ADAPTER_REGISTRY.__doc__ = """
Adapters between the FPN and the heads. Called as ``cls(cfg, input_shape, top_block=...)`` with
the FPN's ``dict[str, ShapeSpec]`` and the FPN's top block (``LastLevelMaxPool`` in the standard
build, or None), which an adapter that changes P5 needs to recompute the levels above it.
``forward(features)`` returns a dict with the same keys and shapes.
"""


@ADAPTER_REGISTRY.register()
class IdentityAdapter(nn.Module):
    """No adaptation: the heads see the FPN features as they are."""

    def __init__(self, cfg=None, input_shape=None, top_block=None):
        super().__init__()

    def forward(self, features):
        return features


def build_adapter(cfg, input_shape, top_block=None):
    """Build the adapter named by ``cfg.MODEL.ADAPTER.NAME``.

    Args:
        input_shape (dict[str, ShapeSpec]): the FPN's output shapes, in the FPN's level order.
        top_block (nn.Module or None): the FPN's ``top_block`` (it is not copied: the adapter
            calls the backbone's own module).
    """
    adapter = lookup(ADAPTER_REGISTRY, cfg.MODEL.ADAPTER.NAME, "MODEL.ADAPTER.NAME")
    return adapter(cfg, input_shape, top_block=top_block)
