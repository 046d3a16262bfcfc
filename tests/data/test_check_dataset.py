"""tools/check_dataset.py: every bad file of a data set reported at once, through its CLI."""
import glob
import json
import os
import subprocess
import sys

import cv2

from bad_data import copy_sample, train_paths, truncate, reset_process_state
from conftest import REPO, subprocess_env

TOOL = os.path.join(REPO, "tools", "check_dataset.py")
sys.path.insert(0, os.path.dirname(TOOL))
import check_dataset  # noqa: E402


def run_tool(datasets_root, *args):
    env = subprocess_env(DETECTRON2_DATASETS=str(datasets_root))
    return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


def test_a_clean_set_passes_with_the_images_per_task(sample_root, capsys):
    try:  # in this process (the official names point at the sample): same main, no start-up
        assert check_dataset.main(["bdd100k_multitask_train", "--num-workers", "0"]) == 0
    finally:
        reset_process_state()
    out = capsys.readouterr().out
    assert "bdd100k_multitask_train: 11 images" in out
    assert "semantic   labeled on 5 images" in out
    assert "no problems found" in out


def test_every_bad_file_is_named_with_its_problem(sample_root, tmp_path):
    root = copy_sample(sample_root, tmp_path)
    paths = train_paths(root)
    jpeg = truncate(sorted(glob.glob(os.path.join(paths["images_100k"], "*.jpg")))[0])
    mask = sorted(glob.glob(os.path.join(paths["sem_seg_root"], "*.png")))[-1]
    cv2.imwrite(mask, cv2.resize(cv2.imread(mask, cv2.IMREAD_UNCHANGED), (64, 36)))
    with open(paths["det_json"]) as f:
        frames = json.load(f)
    frames[-1]["labels"][0]["category"] = "spaceship"
    with open(paths["det_json"], "w") as f:
        json.dump(frames, f)

    result = run_tool(root, "bdd100k_multitask_train", "--num-workers", "2")
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    assert "3 problems:" in result.stdout
    assert f"{jpeg}: image cannot be decoded: truncated JPEG" in result.stdout
    assert f"{mask}: semantic mask is 64x36 (WxH) but its image is 128x72" in result.stdout
    assert f"{paths['det_json']}: frame {frames[-1]['name']!r}" in result.stdout
    assert "unknown category" in result.stdout
