"""Every shipped config merges and builds a model."""
import glob
import os

import pytest
from detectron2.modeling import build_model

from lv_adapter import build_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True)
    if not os.path.basename(p).startswith("Base-")
)


def load_config(path):
    return build_config(path)


def test_configs_are_found():
    assert len(CONFIGS) >= 9


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: os.path.relpath(p, ROOT))
def test_config_builds_its_model(path):
    cfg = load_config(path)
    model = build_model(cfg)
    assert sorted(model.heads.keys()) == sorted(cfg.MODEL.TASKS)
    assert cfg.MODEL.SPARSE_RCNN.HIDDEN_DIM == cfg.MODEL.FPN.OUT_CHANNELS


def test_unknown_key_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    base = os.path.join(ROOT, "configs", "Base-LVAdapter.yaml")
    bad.write_text(f'_BASE_: "{base}"\nMODEL:\n  SPARSE_RCNN:\n    NUM_PROPOSAL: 3\n')
    with pytest.raises(KeyError, match="NUM_PROPOSAL"):
        load_config(str(bad))


def test_unknown_task_is_refused():
    cfg = load_config(os.path.join(ROOT, "configs", "quick_schedules", "multitask_tiny.yaml"))
    cfg.MODEL.TASKS = ["detection", "depth"]
    with pytest.raises(ValueError, match="unknown tasks \\['depth'\\]"):
        build_model(cfg)
