"""Stand-in for detectron2's compiled extension ``detectron2._C``.

detectron2 is not on PyPI; the sdist this project builds from carries no C++ sources, so
``tools/setup_env.sh`` installs this file as ``detectron2/_C.py``. With it every detectron2 module
imports, and the few ops that truly need C++ (deformable convolution, rotated boxes, the C++ COCO
evaluation) fail with :class:`MissingCompiledOpError` when called. Nothing in lv_adapter needs them:
RoIAlign and NMS come from torchvision, and COCO evaluation runs in pycocotools.

``lv_adapter.compat`` registers this same module when ``detectron2._C`` cannot be imported.
This module must not import anything from detectron2 or lv_adapter.
"""

IS_PLACEHOLDER = True


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
