"""The one place that knows how detectron2 versions differ.

Supported: detectron2 0.6 (what ``tools/setup_env.sh`` builds from PyPI's ``pb1-detectron2`` sdist,
without C++ ops) and detectron2 built from its main branch (what GPU users install from git).
"""
import importlib
import sys

import detectron2

from lv_adapter import _detectron2_c_placeholder

DETECTRON2_VERSION = tuple(int(p) for p in detectron2.__version__.split(".")[:2] if p.isdigit())


def _ensure_compiled_ops_module():
    """Make ``detectron2._C`` importable; return True when it holds the real compiled ops.

    Without the compiled extension, ``import detectron2.layers`` fails at
    ``from detectron2 import _C``. Registering the placeholder lets every module import, and the
    ops that truly need C++ raise ``MissingCompiledOpError`` with what to install when called.
    """
    try:
        module = importlib.import_module("detectron2._C")
    except ImportError:
        module = _detectron2_c_placeholder
        sys.modules["detectron2._C"] = module
        detectron2._C = module
    return not getattr(module, "IS_PLACEHOLDER", False)


HAS_COMPILED_OPS = _ensure_compiled_ops_module()
# The class raised by the placeholder that is actually in use: the copy installed inside
# detectron2 by tools/setup_env.sh, or this package's own.
MissingCompiledOpError = getattr(
    sys.modules["detectron2._C"], "MissingCompiledOpError", _detectron2_c_placeholder.MissingCompiledOpError
)
