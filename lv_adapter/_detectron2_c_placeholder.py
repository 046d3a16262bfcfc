"""Stand-in for detectron2's compiled extension ``detectron2._C``.

detectron2 is not on PyPI; the sdist this project builds from carries no C++ sources, so
``tools/setup_env.sh`` installs this file as ``detectron2/_C.py``. With it every detectron2 module
imports, and the few ops that truly need C++ (deformable convolution, rotated boxes, the C++ COCO
evaluation) fail with :class:`MissingCompiledOpError` when called. Nothing in lv_adapter needs them:
RoIAlign and NMS come from torchvision, and COCO evaluation runs in pycocotools.

detectron2 reaches its compiled ops in two ways: 0.6 as attributes of ``detectron2._C`` (answered
by this module's ``__getattr__``), its main branch partly through ``torch.ops.detectron2.<op>``
(the rotated-box ops, which its extension registers with torch). :func:`register_torch_ops` gives
those names placeholder ops that raise the same error; installed as ``detectron2/_C.py`` this
module registers them on import.

``lv_adapter.compat`` registers this same module when ``detectron2._C`` cannot be imported.
This module must not import anything from detectron2 or lv_adapter.
"""
import sys

import torch

IS_PLACEHOLDER = True
# The ops detectron2's extension registers under torch.ops.detectron2, with their signatures.
TORCH_OPS = {
    "nms_rotated": "nms_rotated(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "box_iou_rotated": "box_iou_rotated(Tensor boxes1, Tensor boxes2) -> Tensor",
    "roi_align_rotated_forward": (
        "roi_align_rotated_forward(Tensor input, Tensor rois, float spatial_scale, "
        "int pooled_height, int pooled_width, int sampling_ratio) -> Tensor"
    ),
    "roi_align_rotated_backward": (
        "roi_align_rotated_backward(Tensor grad, Tensor rois, float spatial_scale, "
        "int pooled_height, int pooled_width, int batch_size, int channels, int height, "
        "int width, int sampling_ratio) -> Tensor"
    ),
}
_LIBRARIES = []  # keeps the registrations alive


class MissingCompiledOpError(RuntimeError):
    """Raised when code calls a detectron2 op that exists only in the compiled extension."""


def get_compiler_version():
    return "none: detectron2._C is a pure-Python placeholder (no C++ ops built)"


def get_cuda_version():
    return "none: detectron2._C is a pure-Python placeholder"


def has_cuda():
    return False


def _missing(name):
    def op(*args, **kwargs):
        raise MissingCompiledOpError(
            f"detectron2._C.{name} is not available: this detectron2 was installed without its "
            "compiled C++ ops (deformable conv, rotated boxes, fast COCO evaluation). "
            "Build detectron2 from source with a C++ compiler "
            "(pip install 'git+https://github.com/facebookresearch/detectron2.git'), or avoid the "
            "op (for COCOEvaluator pass use_fast_impl=False)."
        )

    op.__name__ = name
    return op


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _missing(name)


def register_torch_ops(ops_module=None):
    """Give each missing ``torch.ops.detectron2.<op>`` of :data:`TORCH_OPS` a placeholder.

    Args:
        ops_module (module or None): the ``detectron2._C`` placeholder in use, whose
            ``MissingCompiledOpError`` the ops raise; None: this module.
    """
    ops_module = ops_module or sys.modules[__name__]
    missing = [name for name in TORCH_OPS if not hasattr(torch.ops.detectron2, name)]
    if not missing:  # compiled, or registered by the other copy of this module
        return
    # A fragment, not a definition: the copy installed as detectron2._C and lv_adapter's own
    # copy may each register what is still missing.
    library = torch.library.Library("detectron2", "FRAGMENT")
    for name in missing:
        library.define(TORCH_OPS[name])
        # CompositeImplicitAutograd: one kernel for every device, autograd included.
        library.impl(name, getattr(ops_module, name), "CompositeImplicitAutograd")
    _LIBRARIES.append(library)


if __name__ == "detectron2._C":  # installed inside detectron2 (tools/setup_env.sh)
    register_torch_ops()
