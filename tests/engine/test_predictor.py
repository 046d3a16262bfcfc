"""tools/visualize_predictions.py (through lv_adapter.engine.Predictor) refuses to draw
predictions of weights that do not make up the whole model."""
import os
import sys

import pytest
import torch
from detectron2.modeling import build_model

from conftest import REPO
from lv_adapter import build_config
from lv_adapter.engine import SafeCheckpointer

sys.path.insert(0, os.path.join(REPO, "tools"))
import visualize_predictions  # noqa: E402

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


def draw(sample_root, out, *opts):
    image = os.path.join(sample_root, "bdd100k", "images", "10k", "val")
    visualize_predictions.main(visualize_predictions.parse_args(
        ["--config-file", TINY, "--input", image, "--output", str(out), *opts]
    ))


def test_no_weights_are_refused(sample_root, tmp_path):
    with pytest.raises(ValueError, match="set MODEL.WEIGHTS"):
        draw(sample_root, tmp_path / "drawings")
    assert not os.path.exists(tmp_path / "drawings")


def test_weights_without_the_segmentation_heads_are_refused(sample_root, tmp_path):
    teacher = build_model(build_config(TINY, ["MODEL.TASKS", "('detection',)"]))
    SafeCheckpointer(teacher, save_dir=str(tmp_path)).save("teacher")
    with pytest.raises(ValueError, match=r"lacks 104 entries(.|\n)*heads\.semantic\.predictor"):
        draw(sample_root, tmp_path / "drawings", "MODEL.WEIGHTS", str(tmp_path / "teacher.pth"))
    assert not os.path.exists(tmp_path / "drawings")


def test_complete_weights_are_drawn(sample_root, tmp_path):
    torch.manual_seed(0)
    SafeCheckpointer(build_model(build_config(TINY)), save_dir=str(tmp_path)).save("model")
    draw(sample_root, tmp_path / "drawings", "MODEL.WEIGHTS", str(tmp_path / "model.pth"))
    assert os.listdir(tmp_path / "drawings")
