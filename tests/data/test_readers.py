"""Bad image and mask files get an error that names the file and the problem."""
import logging

import numpy as np
import pytest

from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.mapper import MultiTaskDatasetMapper
from lv_adapter.data.readers import read_image, read_label_mask
from lv_adapter.utils.io import write_image


def _write(tmp_path, name, array):
    path = str(tmp_path / name)
    write_image(path, array)
    return path


def _truncate(path, keep=0.5):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    return path


def test_missing_image(tmp_path):
    with pytest.raises(BadSampleError, match=r"nope\.jpg: image file is missing"):
        read_image(str(tmp_path / "nope.jpg"))


@pytest.mark.parametrize("keep", [0.0, 0.3])
def test_truncated_jpeg(tmp_path, keep):
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    path = _truncate(_write(tmp_path, "a.jpg", noise), keep)
    with pytest.raises(BadSampleError, match=r"a\.jpg: image cannot be decoded"):
        read_image(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "a.jpg"
    path.write_text("hello")
    with pytest.raises(BadSampleError, match="image cannot be decoded"):
        read_image(str(path))


def test_good_mask_round_trip(tmp_path):
    mask = np.array([[0, 18, 255], [3, 4, 5]], np.uint8)
    out = read_label_mask(_write(tmp_path, "m.png", mask), "semantic", (2, 3))
    assert (out == mask).all()


def test_missing_mask(tmp_path):
    with pytest.raises(BadSampleError, match=r"m\.png: label mask file is missing"):
        read_label_mask(str(tmp_path / "m.png"), "semantic")


def test_truncated_png(tmp_path):
    noise = np.random.default_rng(0).integers(0, 19, (64, 64), dtype=np.uint8)
    path = _truncate(_write(tmp_path, "m.png", noise), 0.5)
    with pytest.raises(BadSampleError, match=r"m\.png: label mask cannot be decoded"):
        read_label_mask(path, "semantic")


def test_mask_size_must_match_image(tmp_path):
    path = _write(tmp_path, "m.png", np.zeros((10, 20), np.uint8))
    with pytest.raises(BadSampleError, match=r"m\.png: drivable mask is 20x10 .* image is 30x10"):
        read_label_mask(path, "drivable", (10, 30))


@pytest.mark.parametrize(
    "task, value, legacy", [("semantic", 19, False), ("drivable", 3, False), ("drivable", 7, True)]
)
def test_out_of_range_values(tmp_path, task, value, legacy):
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 1] = value
    path = _write(tmp_path, "m.png", mask)
    with pytest.raises(BadSampleError, match=rf"m\.png: {task} mask holds values \[{value}\]"):
        read_label_mask(path, task, legacy_drivable=legacy)


def test_colour_mask_is_refused(tmp_path):
    path = _write(tmp_path, "m.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(BadSampleError, match="single-channel class ids, got 3 channels"):
        read_label_mask(path, "semantic")


def test_sixteen_bit_mask_is_refused(tmp_path):
    path = _write(tmp_path, "m.png", np.zeros((4, 4), np.uint16))
    with pytest.raises(BadSampleError, match="must be 8-bit, got uint16"):
        read_label_mask(path, "semantic")


def test_legacy_drivable_remap(tmp_path):
    legacy = np.array([[0, 1, 2, 255]], np.uint8)  # background, direct, alternative, ignore
    out = read_label_mask(_write(tmp_path, "m.png", legacy), "drivable", legacy_drivable=True)
    assert out.tolist() == [[2, 0, 1, 255]]


@pytest.fixture
def bad_dict(tmp_path):
    image = _write(tmp_path, "img.png", np.zeros((8, 8, 3), np.uint8))
    mask = _write(tmp_path, "sem.png", np.full((8, 8), 40, np.uint8))
    return {"file_name": image, "height": 8, "width": 8, "labeled_tasks": ["semantic"],
            "sem_seg_file_name": mask}


def test_mapper_raises_by_default(bad_dict):
    with pytest.raises(BadSampleError, match=r"sem\.png: semantic mask holds values \[40\]"):
        MultiTaskDatasetMapper(augmentations=[])(bad_dict)


def test_mapper_skip_policy_returns_none_warns_and_counts(bad_dict, caplog):
    mapper = MultiTaskDatasetMapper(augmentations=[], on_bad_sample="skip")
    with caplog.at_level(logging.WARNING):
        assert mapper(bad_dict) is None
        assert mapper(bad_dict) is None
    assert mapper._bad_samples.count == 2
    assert "2 skipped so far" in caplog.text and "sem.png" in caplog.text


def test_evaluation_never_skips(bad_dict):
    bad_dict["height"] = 9  # wrong size in the dataset dict
    mapper = MultiTaskDatasetMapper(is_train=False, augmentations=[], on_bad_sample="skip")
    with pytest.raises(BadSampleError, match=r"img\.png: .*[Mm]ismatch"):
        mapper(bad_dict)


def test_labeled_task_without_mask_file(bad_dict):
    del bad_dict["sem_seg_file_name"]
    with pytest.raises(BadSampleError, match="labeled for semantic but has no 'sem_seg_file_name'"):
        MultiTaskDatasetMapper(augmentations=[])(bad_dict)


def test_unknown_policy_is_refused():
    with pytest.raises(ValueError, match="DATASETS.ON_BAD_SAMPLE must be one of"):
        MultiTaskDatasetMapper(augmentations=[], on_bad_sample="ignore")
