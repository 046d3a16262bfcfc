"""MultiTaskDatasetMapper: labels stay aligned with pixels under flip, resize and crop."""
import numpy as np
import pytest
import torch
from detectron2.config import get_cfg
from detectron2.data import transforms as T
from detectron2.structures import BoxMode

from lv_adapter.config import add_lv_adapter_config
from lv_adapter.data.mapper import MultiTaskDatasetMapper
from lv_adapter.utils.io import write_image

H, W = 48, 64
# The drawn object: columns 40..55 and rows 10..29 (inclusive), a car on an alternative lane.
X1, Y1, X2, Y2 = 40, 10, 55, 29
CAR, ROAD = 13, 0


@pytest.fixture
def sample(tmp_path):
    """One image with a pure-red object, its box, a semantic mask and a drivable mask."""
    image = np.full((H, W, 3), 90, np.uint8)
    image[Y1 : Y2 + 1, X1 : X2 + 1] = (0, 0, 255)  # BGR red
    sem = np.full((H, W), ROAD, np.uint8)
    sem[Y1 : Y2 + 1, X1 : X2 + 1] = CAR
    drivable = np.zeros((H, W), np.uint8)  # direct everywhere ...
    drivable[:, : W // 4] = 1  # ... alternative on the left quarter ...
    drivable[Y1 : Y2 + 1, X1 : X2 + 1] = 2  # ... and the car is not drivable
    paths = {name: str(tmp_path / f"{name}.{ext}") for name, ext in
             (("image", "png"), ("sem", "png"), ("drivable", "png"))}
    write_image(paths["image"], image)  # png: exact pixels, no JPEG ringing
    write_image(paths["sem"], sem)
    write_image(paths["drivable"], drivable)
    return {
        "file_name": paths["image"],
        "image_id": "img",
        "height": H,
        "width": W,
        "labeled_tasks": ["detection", "semantic", "drivable"],
        "annotations": [
            {"bbox": [X1, Y1, X2 + 1, Y2 + 1], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 2,
             "iscrowd": 0},
            {"bbox": [0, 0, 10, 10], "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0,
             "iscrowd": 1},
        ],
        "sem_seg_file_name": paths["sem"],
        "drivable_file_name": paths["drivable"],
    }


def _red(image_chw):
    b, g, r = image_chw.int()
    return (r > 200) & (g < 60) & (b < 60)


def assert_aligned(out):
    """The red pixels, the car box, the car mask and the non-drivable hole coincide."""
    red = _red(out["image"])
    ys, xs = torch.nonzero(red, as_tuple=True)
    assert len(ys) > 0, "the object was lost"
    (box,) = out["instances"].gt_boxes.tensor.tolist()
    # The box is the object's extent in the continuous convention: [min, max + 1].
    extent = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
    assert box == pytest.approx(extent, abs=1.01)
    car = out["sem_seg"] == CAR
    assert (car == red).float().mean() > 0.99
    hole = out["drivable_seg"] == 2
    assert (hole == red).float().mean() > 0.99
    assert out["image"].shape[1:] == out["sem_seg"].shape == out["drivable_seg"].shape


def test_identity_mapping_keeps_pixels_and_labels(sample):
    out = MultiTaskDatasetMapper(is_train=True, augmentations=[])(sample)
    assert out["image"].dtype == torch.uint8 and out["image"].shape == (3, H, W)
    assert out["sem_seg"].dtype == torch.int64 and out["drivable_seg"].dtype == torch.int64
    assert out["labeled_tasks"] == ("detection", "semantic", "drivable")
    # The crowd box is not a target.
    assert out["instances"].gt_classes.tolist() == [2]
    assert out["instances"].gt_boxes.tensor.tolist() == [[X1, Y1, X2 + 1, Y2 + 1]]
    assert_aligned(out)


def test_flip_moves_boxes_and_both_masks(sample):
    out = MultiTaskDatasetMapper(augmentations=[T.RandomFlip(prob=1.0)])(sample)
    assert out["instances"].gt_boxes.tensor.tolist() == [[W - X2 - 1, Y1, W - X1, Y2 + 1]]
    # The alternative lane was on the left quarter; it is now on the right.
    assert (out["drivable_seg"][:, -W // 4 :] == 1).all()
    assert_aligned(out)


def test_resize_scales_boxes_and_masks(sample):
    out = MultiTaskDatasetMapper(augmentations=[T.ResizeShortestEdge(96, 1000)])(sample)
    assert out["image"].shape == (3, 96, 128)
    assert out["instances"].gt_boxes.tensor.tolist() == [[80, 20, 112, 60]]
    assert_aligned(out)


def test_crop_cuts_boxes_and_masks_together(sample):
    # A fixed crop through the object: columns 48..63, rows 0..47.
    crop = T.CropTransform(48, 0, 16, H)
    out = MultiTaskDatasetMapper(augmentations=[_Fixed(crop), T.RandomFlip(prob=1.0)])(sample)
    assert out["image"].shape == (3, H, 16)
    # Object columns 48..55 survive the crop (8 px), then the flip mirrors them to 8..15.
    assert out["instances"].gt_boxes.tensor.tolist() == [[8, Y1, 16, Y2 + 1]]
    assert_aligned(out)


def test_crop_removes_boxes_that_fall_outside(sample):
    out = MultiTaskDatasetMapper(augmentations=[_Fixed(T.CropTransform(0, 0, 30, H))])(sample)
    assert len(out["instances"]) == 0
    assert not (out["sem_seg"] == CAR).any()


def test_unlabeled_tasks_give_ignore_masks_and_no_targets(sample):
    del sample["annotations"], sample["sem_seg_file_name"]
    sample["labeled_tasks"] = ["drivable"]
    out = MultiTaskDatasetMapper(augmentations=[T.ResizeShortestEdge(24, 1000)])(sample)
    assert out["labeled_tasks"] == ("drivable",)
    assert len(out["instances"]) == 0 and out["instances"].image_size == (24, 32)
    assert (out["sem_seg"] == 255).all() and out["sem_seg"].shape == (24, 32)
    assert set(out["drivable_seg"].unique().tolist()) == {0, 1, 2}


def test_legacy_drivable_masks_are_remapped(sample, tmp_path):
    # 2018 encoding: 0 background, 1 direct, 2 alternative.
    legacy = np.ones((H, W), np.uint8)
    legacy[:, : W // 4] = 2
    legacy[Y1 : Y2 + 1, X1 : X2 + 1] = 0
    write_image(str(tmp_path / "legacy.png"), legacy)
    sample.update(drivable_file_name=str(tmp_path / "legacy.png"), drivable_legacy=True)
    out = MultiTaskDatasetMapper(augmentations=[])(sample)
    assert (out["drivable_seg"][:, : W // 4 - 1] == 1).all()  # alternative
    assert out["drivable_seg"][0, -1] == 0  # direct
    assert_aligned(out)


def test_test_mode_only_resizes_the_image(sample):
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    cfg.INPUT.MIN_SIZE_TEST = 24
    out = MultiTaskDatasetMapper(cfg, is_train=False)(sample)
    assert out["image"].shape == (3, 24, 32)
    assert "instances" not in out and "sem_seg" not in out
    assert (out["height"], out["width"]) == (H, W)


def test_from_config_builds_crop_resize_and_flip():
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    cfg.INPUT.CROP.ENABLED = True
    augs = MultiTaskDatasetMapper(cfg, is_train=True).augmentations
    assert [type(a).__name__ for a in augs] == ["RandomCrop", "ResizeShortestEdge", "RandomFlip"]


class _Fixed(T.Augmentation):
    """An augmentation that always returns the same transform."""

    def __init__(self, transform):
        super().__init__()
        self.transform = transform

    def get_transform(self, image):
        return self.transform


def test_a_resize_to_the_same_size_changes_nothing(sample):
    out = MultiTaskDatasetMapper(augmentations=[T.ResizeShortestEdge(H, 1000)])(sample)
    assert out["image"].shape == (3, H, W)
    assert out["instances"].gt_boxes.tensor.tolist() == [[X1, Y1, X2 + 1, Y2 + 1]]
    assert_aligned(out)


def test_augmentations_that_need_labels_are_refused():
    crop = T.RandomCrop_CategoryAreaConstraint("absolute", (8, 8))
    with pytest.raises(ValueError, match="augmentations may use only the image"):
        MultiTaskDatasetMapper(augmentations=[crop])
