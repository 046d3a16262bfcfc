"""The drawing tools name an unreadable file, skip it, draw the rest and exit with status 1."""
import glob
import os
import shutil
import sys

import pytest
import torch
from detectron2.modeling import build_model

from bad_data import TINY, copy_sample, registered, reset_process_state, truncate
from conftest import REPO
from lv_adapter import build_config

sys.path.insert(0, os.path.join(REPO, "tools"))
import visualize_data  # noqa: E402
import visualize_predictions  # noqa: E402


@pytest.fixture
def reset():
    yield
    reset_process_state()


def test_ground_truth_drawing_names_a_truncated_jpeg_and_goes_on(sample_root, tmp_path, capsys):
    root = copy_sample(sample_root, tmp_path)
    images = sorted(glob.glob(os.path.join(root, "bdd100k", "images", "100k", "train", "*.jpg")))
    bad = truncate(images[0])
    out = tmp_path / "gt"
    with registered("truncated_jpeg_copy", root):
        status = visualize_data.main(visualize_data.parse_args(
            ["--dataset", "truncated_jpeg_copy", "--num", "4", "--out", str(out)]))
    captured = capsys.readouterr()
    assert status == 1
    assert f"{bad}: image cannot be decoded: truncated JPEG" in captured.err
    assert "wrote 3 drawings" in captured.out and "skipped 1 images" in captured.out
    assert len(os.listdir(out)) == 3


def test_prediction_drawing_skips_an_unreadable_image_of_a_folder(sample_root, tmp_path, capsys,
                                                                  reset):
    folder = tmp_path / "images"
    shutil.copytree(os.path.join(sample_root, "bdd100k", "images", "100k", "val"), folder)
    first = truncate(sorted(glob.glob(str(folder / "*.jpg")))[0])
    weights = str(tmp_path / "model.pth")
    torch.save({"model": build_model(build_config(TINY)).state_dict()}, weights)
    status = visualize_predictions.main(visualize_predictions.parse_args(
        ["--config-file", TINY, "--input", str(folder), "--output", str(tmp_path / "out"),
         "MODEL.WEIGHTS", weights]))
    captured = capsys.readouterr()
    assert status == 1
    assert f"{first}: image cannot be decoded: truncated JPEG" in captured.err
    assert "wrote 3 drawings" in captured.out and "skipped 1 unreadable images" in captured.out
    drawn = sorted(os.listdir(tmp_path / "out"))
    assert len(drawn) == 3 and os.path.basename(first)[:-4] + ".png" not in drawn


@pytest.mark.parametrize("num", ["0", "-2"])
def test_a_number_of_drawings_below_one_is_refused(num, capsys):
    with pytest.raises(SystemExit):
        visualize_data.parse_args(["--num", num])
    assert f"--num must be >= 1, got {num}" in capsys.readouterr().err
