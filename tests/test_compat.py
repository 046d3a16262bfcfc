"""compat: detectron2 imports without compiled ops, the missing ops say why when called, and
detectron2's class histogram works on images labeled for some tasks, on every version."""
import logging
import re
import subprocess
import sys

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog, build_detection_test_loader

from conftest import subprocess_env
from lv_adapter import _detectron2_c_placeholder, compat


def test_detectron2_layers_import_in_a_fresh_interpreter_without_lv_adapter():
    # Users often import detectron2 first; the placeholder must live in detectron2 itself.
    code = "import detectron2.layers, detectron2.evaluation, detectron2.engine; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_tools_run_by_the_tests_import_the_detectron2_the_tests_import():
    # `make test-d2main` puts detectron2's main branch first on PYTHONPATH, over the venv's 0.6:
    # a subprocess started by a test must keep it, or its half of the test checks 0.6 again.
    import detectron2

    code = "import detectron2; print(detectron2.__file__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=subprocess_env(), check=True)
    assert result.stdout.strip() == detectron2.__file__


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


@pytest.mark.skipif(compat.HAS_COMPILED_OPS, reason="detectron2 has its compiled ops here")
def test_rotated_box_ops_fail_clearly_without_lv_adapter():
    # detectron2's main branch calls the rotated-box ops through torch.ops.detectron2: the
    # placeholder installed inside detectron2 must answer there too, for users of plain detectron2.
    code = (
        "import sys, torch\n"
        "from detectron2 import _C\n"
        "from detectron2.layers.rotated_boxes import pairwise_iou_rotated\n"
        "from detectron2.layers.nms import nms_rotated\n"
        "b = torch.tensor([[5.0, 5.0, 2.0, 2.0, 0.0]])\n"
        "for call in (lambda: pairwise_iou_rotated(b, b), lambda: nms_rotated(b, b[:, 0], 0.5)):\n"
        "    try:\n"
        "        call()\n"
        "    except _C.MissingCompiledOpError as e:\n"
        "        print('clear' if 'compiled C++ ops' in str(e) else e)\n"
        "print('lv_adapter' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    installed = sys.modules["detectron2._C"].__file__
    assert result.returncode == 0, (
        f"{result.stderr}\n(is {installed} older than lv_adapter/_detectron2_c_placeholder.py? "
        "`make setup` reinstalls it)"
    )
    assert result.stdout.split() == ["clear", "clear", "False"]


@pytest.mark.skipif(compat.HAS_COMPILED_OPS, reason="detectron2 has its compiled ops here")
def test_the_rotated_box_ops_have_placeholders_of_their_compiled_signature():
    # A wrong schema would give a schema error instead of the clear one.
    roi_align = torch.ops.detectron2.roi_align_rotated_forward
    with pytest.raises(compat.MissingCompiledOpError):
        roi_align(torch.zeros(1, 1, 4, 4), torch.zeros(1, 6), 1.0, 2, 2, 0)
    with pytest.raises(compat.MissingCompiledOpError):
        torch.ops.detectron2.roi_align_rotated_backward(
            torch.zeros(1, 1, 2, 2), torch.zeros(1, 6), 1.0, 2, 2, 1, 1, 4, 4, 0
        )


@pytest.fixture
def histogram_lines():
    """Messages of detectron2.data.build's logger (detectron2's own handlers do not propagate)."""
    lines = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("detectron2.data.build")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def _register(name, dicts):
    DatasetCatalog.register(name, lambda: [dict(d) for d in dicts])
    MetadataCatalog.get(name).set(thing_classes=["car", "bus"])


def _load_test_set(name):
    """Load ``name`` as detectron2's evaluation loader does (its path to the histogram)."""
    cfg = get_cfg()
    cfg.DATALOADER.NUM_WORKERS = 0
    return build_detection_test_loader(cfg, name, mapper=lambda d: d)


def test_test_loader_logs_the_histogram_when_the_first_image_has_no_boxes(histogram_lines):
    dicts = [
        {"file_name": "a.jpg", "image_id": "a", "labeled_tasks": ["semantic"]},
        {"file_name": "b.jpg", "image_id": "b", "labeled_tasks": ["detection"], "annotations": [
            {"category_id": 1, "iscrowd": 0}, {"category_id": 1, "iscrowd": 0},
            {"category_id": 0, "iscrowd": 1},
        ]},
        {"file_name": "c.jpg", "image_id": "c", "labeled_tasks": ["detection"], "annotations": []},
        {"file_name": "d.jpg", "image_id": "d", "labeled_tasks": ["detection"],
         "pseudo_tasks": ["detection"], "annotations": [{"category_id": 0, "iscrowd": 0}] * 3},
    ]
    _register("compat_histogram_order", dicts)
    _load_test_set("compat_histogram_order")
    table = [line for line in histogram_lines if line.startswith("Boxes per class")]
    assert len(table) == 1, histogram_lines
    assert "in the 3 of 4 images labeled for detection (2 ground truth, 1 pseudo" in table[0]
    counts = re.findall(r"\|\s*(car|bus|total)\s*\|\s*(\d+)\s*\|\s*(\d+)", table[0])
    assert sorted(counts) == [("bus", "2", "0"), ("car", "0", "3"), ("total", "2", "3")]


def test_a_category_id_outside_the_classes_names_the_file(histogram_lines):
    dicts = [{"file_name": "bad.jpg", "annotations": [{"category_id": 2, "iscrowd": 0}]}]
    _register("compat_histogram_bad_id", dicts)
    with pytest.raises(ValueError, match=r"bad\.jpg: category_id 2 is outside 0\.\.1"):
        _load_test_set("compat_histogram_bad_id")


def test_filter_empty_keeps_images_with_segmentation_labels(histogram_lines):
    box, crowd = {"category_id": 0, "iscrowd": 0}, {"category_id": 0, "iscrowd": 1}
    dicts = [
        {"image_id": "seg", "labeled_tasks": ["semantic"]},  # no "annotations" at all
        {"image_id": "both", "labeled_tasks": ["detection", "semantic"], "annotations": []},
        {"image_id": "empty", "labeled_tasks": ["detection"], "annotations": []},
        {"image_id": "crowd", "labeled_tasks": ["detection"], "annotations": [crowd]},
        {"image_id": "box", "labeled_tasks": ["detection"], "annotations": [crowd, box]},
        {"image_id": "plain", "annotations": []},  # a detectron2 dataset without labeled_tasks
    ]
    _register("compat_filter_empty", dicts)
    kept = compat.get_detection_dataset_dicts("compat_filter_empty", filter_empty=True)
    assert [d["image_id"] for d in kept] == ["seg", "both", "box"]
    assert any("left out 3 of 6 images" in line for line in histogram_lines)
    everything = compat.get_detection_dataset_dicts("compat_filter_empty", filter_empty=False)
    assert len(everything) == 6


def test_cpu_processes_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(compat.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [compat.cpu_threads_per_process(n) for n in (1, 2, 3, 16)] == [8, 4, 2, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's choice stands
    assert compat.cpu_threads_per_process(2) == torch.get_num_threads()
