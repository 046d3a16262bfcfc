"""compat: detectron2 imports without compiled ops, and the missing ops say why when called."""
import subprocess
import sys

import pytest
import torch

from lv_adapter import _detectron2_c_placeholder, compat


def test_detectron2_layers_import_in_a_fresh_interpreter_without_lv_adapter():
    # Users often import detectron2 first; the placeholder must live in detectron2 itself.
    code = "import detectron2.layers, detectron2.evaluation, detectron2.engine; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_version_is_known():
    assert compat.DETECTRON2_VERSION >= (0, 6)


@pytest.mark.skipif(compat.HAS_COMPILED_OPS, reason="detectron2 has its compiled ops here")
def test_fast_coco_eval_fails_with_a_clear_message():
    from detectron2 import _C

    with pytest.raises(compat.MissingCompiledOpError, match="use_fast_impl=False"):
        _C.COCOevalAccumulate({}, [])


@pytest.mark.skipif(compat.HAS_COMPILED_OPS, reason="detectron2 has its compiled ops here")
def test_rotated_box_iou_fails_with_a_clear_message():
    from detectron2.layers.rotated_boxes import pairwise_iou_rotated

    boxes = torch.tensor([[5.0, 5.0, 2.0, 2.0, 0.0]])
    with pytest.raises(compat.MissingCompiledOpError, match="compiled C.. ops"):
        pairwise_iou_rotated(boxes, boxes)


def test_placeholder_answers_environment_queries():
    # detectron2's collect_env_info (called by default_setup) asks these.
    assert "placeholder" in _detectron2_c_placeholder.get_compiler_version()
    assert _detectron2_c_placeholder.has_cuda() is False
    with pytest.raises(AttributeError):
        _detectron2_c_placeholder.__wrapped__  # dunder lookups stay AttributeErrors


def test_compat_registers_the_placeholder_when_compiled_ops_cannot_be_imported():
    # A None entry in sys.modules makes `import detectron2._C` raise ImportError, as it does for
    # a detectron2 installed without its extension and without the placeholder file.
    code = (
        "import sys; sys.modules['detectron2._C'] = None\n"
        "import lv_adapter.compat as c\n"
        "import detectron2.layers\n"
        "print(c.HAS_COMPILED_OPS, sys.modules['detectron2._C'].__name__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "lv_adapter._detectron2_c_placeholder"]
