"""Training through train_net and detectron2's loader on damaged or incomplete data sets."""
import glob
import os
import random

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from detectron2.data.common import MapDataset
from detectron2.utils import comm

import train_net
from bad_data import (
    copy_sample,
    read_log,
    registered,
    train_args,
    train_paths,
    truncate,
    reset_process_state,
)
from lv_adapter import compat
from lv_adapter.compat import patch_map_dataset_fallback


@pytest.fixture
def undo_setup():
    yield
    reset_process_state()


def test_skip_policy_trains_through_bad_images(sample_root, tmp_path):
    root = copy_sample(sample_root, tmp_path)
    images = sorted(glob.glob(os.path.join(train_paths(root)["images_100k"], "*.jpg")))
    bad = [truncate(path) for path in images[::2]]  # 5 of the 11 training images
    out = tmp_path / "out"
    with registered("bad_images_copy", root):
        train_net.main(train_args(out, "DATASETS.TRAIN", "('bad_images_copy',)",
                                  "DATASETS.ON_BAD_SAMPLE", "skip", "SOLVER.MAX_ITER", 3))
    assert os.path.isfile(out / "model_final.pth")
    log = read_log(out)
    assert "Skipping a bad image (1 skipped so far)" in log
    assert any(f"{path}: image cannot be decoded: truncated JPEG" in log for path in bad)


def test_package_info_lines_reach_log_txt(sample_root, tmp_path, undo_setup):
    train_net.main(train_args(tmp_path, "SOLVER.MAX_ITER", 1))
    log = read_log(tmp_path)
    assert "Loaded 9 BDD100K images from" in log
    assert "Dropped 1 10k-train images that are also 100k-val images" in log
    assert "training images per task: detection 9, semantic 5, drivable 9" in log


def test_other_processes_write_the_package_lines_to_their_own_log(sample_root, tmp_path,
                                                                  monkeypatch, undo_setup):
    # What train_net.setup does in the process of rank 1 (tests/test_train_net.py launches two).
    monkeypatch.setattr(comm, "get_rank", lambda: 1)
    train_net.setup(train_args(tmp_path))
    DatasetCatalog.get("bdd100k_multitask_train")
    with open(tmp_path / "log.txt.rank1", encoding="utf-8") as f:
        assert "Loaded 9 BDD100K images from" in f.read()


def test_a_trained_task_without_labels_stops_training_with_the_folder_named(
    sample_root, tmp_path
):
    root = copy_sample(sample_root, tmp_path)
    masks = train_paths(root)["sem_seg_root"]
    for path in glob.glob(os.path.join(masks, "*")):
        os.remove(path)
    with registered("no_semantic_copy", root):
        with pytest.raises(ValueError) as error:
            train_net.main(train_args(tmp_path / "out", "DATASETS.TRAIN", "('no_semantic_copy',)"))
        message = str(error.value)
        assert "MODEL.TASKS" in message and "'semantic'" in message
        assert "no_semantic_copy" in message and masks in message
        # Without the semantic head the same set trains.
        train_net.main(train_args(tmp_path / "det_driv", "DATASETS.TRAIN", "('no_semantic_copy',)",
                                  "MODEL.TASKS", "['detection','drivable']", "SOLVER.MAX_ITER", 1))
    assert "semantic 0" in read_log(tmp_path / "det_driv")


def test_masks_named_in_upper_case_are_found_and_stray_files_named(sample_root, tmp_path):
    root = copy_sample(sample_root, tmp_path)
    masks = train_paths(root)["sem_seg_root"]
    for path in glob.glob(os.path.join(masks, "*.png")):
        os.rename(path, path[:-4] + ".PNG")
    drivable = train_paths(root)["drivable_root"]
    open(os.path.join(drivable, "notes.txt"), "w").close()
    out = tmp_path / "out"
    with registered("upper_case_copy", root):
        train_net.main(train_args(out, "DATASETS.TRAIN", "('upper_case_copy',)",
                                  "SOLVER.MAX_ITER", 1))
    log = read_log(out)
    assert "training images per task: detection 9, semantic 5, drivable 9" in log
    assert (f"1 file in {drivable} matches no expected mask name (<image stem>.png): notes.txt"
            in log)


class _WorkingFallback(MapDataset):
    """A MapDataset whose fallback works (as on detectron2's main branch): the next index."""

    def __getitem__(self, idx):
        for offset in range(len(self)):
            item = self._map_func(self._dataset[(int(idx) + offset) % len(self)])
            if item is not None:
                return item


class _BrokenFallback(MapDataset):
    """A MapDataset whose fallback fails as detectron2 0.6's does on Python 3.11."""

    def __getitem__(self, idx):
        item = self._map_func(self._dataset[int(idx)])
        if item is None:
            random.sample({1, 2}, k=1)
        return item


def test_the_fallback_patch_replaces_only_a_broken_fallback():
    patch_map_dataset_fallback(_WorkingFallback)
    assert _WorkingFallback.__getitem__ is not compat._map_dataset_getitem
    patch_map_dataset_fallback(_BrokenFallback)
    assert _BrokenFallback.__getitem__ is compat._map_dataset_getitem
    assert _BrokenFallback([None, None, 7], lambda x: x)[0] == 7


def test_a_training_set_whose_every_sample_is_dropped_is_an_error():
    patch_map_dataset_fallback(_BrokenFallback)
    dataset = _BrokenFallback([None, None], lambda x: x)
    with pytest.raises(RuntimeError, match="every sample of the training set was dropped"):
        dataset[0]


@pytest.mark.slow
def test_check_at_start_names_bad_files_before_the_first_iteration(sample_root, tmp_path):
    root = copy_sample(sample_root, tmp_path)
    mask = sorted(glob.glob(os.path.join(train_paths(root)["sem_seg_root"], "*.png")))[0]
    cv2.imwrite(mask, np.full((72, 128), 40, np.uint8))  # 40 is no semantic class
    with registered("bad_mask_copy", root):
        opts = ("DATASETS.TRAIN", "('bad_mask_copy',)", "DATASETS.CHECK_AT_START", True)
        with pytest.raises(ValueError, match="CHECK_AT_START: bad files in 1 of 11 training"
                           ) as error:
            train_net.main(train_args(tmp_path / "raise", *opts))
        assert f"{mask}: semantic mask holds values [40]" in str(error.value)
        assert not os.path.exists(tmp_path / "raise" / "model_0000000.pth")
        train_net.main(train_args(tmp_path / "skip", *opts, "DATASETS.ON_BAD_SAMPLE", "skip",
                                  "SOLVER.MAX_ITER", 1))
    log = read_log(tmp_path / "skip")
    assert (f"leaving out 1 of 11 training images, which have bad files:\n  {mask}: semantic "
            "mask holds values") in log
    assert "Skipping a bad image" not in log  # never drawn: it was left out before training
