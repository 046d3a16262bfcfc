"""The registered official names on a generated sample, checked against its raw files."""
import json
import os

import pytest
from detectron2.data import DatasetCatalog

from lv_adapter.data.splits import apply_split, make_split
from lv_adapter.tasks.detection import DET_CLASSES


def _raw_frames(root, split):
    with open(os.path.join(root, "bdd100k", "labels", "det_20", f"det_{split}.json")) as f:
        return {os.path.splitext(fr["name"])[0]: fr for fr in json.load(f)}


def _stems(root, *parts):
    return {os.path.splitext(n)[0] for n in os.listdir(os.path.join(root, "bdd100k", *parts))}


def test_detection_dicts_follow_the_raw_json(sample_root):
    frames = _raw_frames(sample_root, "train")
    dicts = {d["image_id"]: d for d in DatasetCatalog.get("bdd100k_det_train")}
    assert set(dicts) == set(frames)
    for stem, frame in frames.items():
        labels = frame["labels"] or []
        annos = dicts[stem]["annotations"]
        assert len(annos) == len(labels)
        for label, anno in zip(labels, annos):
            box = label["box2d"]
            # Inclusive pixel indices -> continuous XYXY: the far edges move by one pixel.
            assert anno["bbox"] == [box["x1"], box["y1"], box["x2"] + 1, box["y2"] + 1]
            crowd = label["attributes"].get("crowd", False) or label["category"] == "other vehicle"
            assert anno["iscrowd"] == int(crowd)
            expected = "car" if label["category"] == "other vehicle" else label["category"]
            assert DET_CLASSES[anno["category_id"]] == expected


def test_the_null_labels_frame_is_labeled_with_no_boxes(sample_root):
    (stem,) = [s for s, fr in _raw_frames(sample_root, "train").items() if fr["labels"] is None]
    (record,) = [d for d in DatasetCatalog.get("bdd100k_det_train") if d["image_id"] == stem]
    assert record["labeled_tasks"] == ["detection"] and record["annotations"] == []


def test_multitask_train_merges_by_image_and_drops_the_leak(sample_root):
    dicts = {d["image_id"]: d for d in DatasetCatalog.get("bdd100k_multitask_train")}
    ten_k = _stems(sample_root, "images", "10k", "train")
    hundred_k = _stems(sample_root, "images", "100k", "train")
    leaked = ten_k & _stems(sample_root, "images", "100k", "val")
    assert leaked and not leaked & set(dicts)
    assert set(dicts) == (ten_k - leaked) | hundred_k
    for stem in ten_k & hundred_k:
        assert dicts[stem]["labeled_tasks"] == ["detection", "semantic", "drivable"]
        assert "/100k/" in dicts[stem]["file_name"]
    for stem in ten_k - hundred_k - leaked:
        assert dicts[stem]["labeled_tasks"] == ["semantic"]
        assert "annotations" not in dicts[stem]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_disjoint_split_of_the_sample(sample_root, seed):
    dicts = DatasetCatalog.get("bdd100k_multitask_train")
    split = make_split(dicts, {"detection": 2, "semantic": 2, "drivable": -1}, seed=seed)
    kept = apply_split(dicts, split)
    assert all(len(d["labeled_tasks"]) == 1 for d in kept)
    assert sum(d["labeled_tasks"] == ["semantic"] for d in kept) == 2
    for d in kept:
        assert ("annotations" in d) == (d["labeled_tasks"] == ["detection"])
        assert ("sem_seg_file_name" in d) == (d["labeled_tasks"] == ["semantic"])
