"""BDD100K loading and registration, on tiny hand-built label trees."""
import importlib.util
import json
import logging
import os
import re

import cv2
import numpy as np
import pytest

import lv_adapter  # noqa: F401  (first: sets up detectron2)
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

from conftest import freed_dataset_names
from lv_adapter.data.datasets.bdd100k import (
    bdd100k_metadata,
    load_bdd100k,
    merge_by_image,
    register_bdd100k,
)
from lv_adapter.data.datasets.builtin import register_all_bdd100k
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.splits import SETTINGS, save_split
from lv_adapter.tasks import BUILTIN_TASKS

LOADER_LOG = "lv_adapter.data.datasets.bdd100k"
OFFICIAL_NAMES = [
    f"bdd100k_{kind}_{split}"
    for kind in ("det", "drivable", "sem_seg", "multitask")
    for split in ("train", "val")
] + [f"bdd100k_{setting}_train{pseudo}" for setting in SETTINGS for pseudo in ("", "_pseudo")]


def write_image(path, width=8, height=6):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.zeros((height, width, 3), np.uint8))


def write_mask(path, width=8, height=6):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.zeros((height, width), np.uint8))


def write_json(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f)


def box_label(category, box=(1, 2, 5, 4), label_id="L1", **attributes):
    x1, y1, x2, y2 = box
    box2d = {"x1": x1, "y1": y1, "x2": x2, "y2": y2}
    return {"id": label_id, "category": category, "attributes": attributes, "box2d": box2d}


def frame(stem, labels):
    return {"name": f"{stem}.jpg", "attributes": {}, "timestamp": 10000, "labels": labels}


@pytest.fixture
def det_root(tmp_path):
    """An image folder and a det JSON path; tests write the frames."""
    images = tmp_path / "images"
    images.mkdir()
    return images, tmp_path / "det.json"


def load_det(images, det_json, frames, **kwargs):
    write_json(det_json, frames)
    return load_bdd100k(str(images), det_json=str(det_json), **kwargs)


def test_boxes_categories_and_crowd(det_root):
    images, det_json = det_root
    write_image(images / "a.jpg", width=20, height=12)
    labels = [
        box_label("car", (1, 2, 10, 5), occluded=False, truncated=False),
        box_label("pedestrian", crowd=True),
        box_label("other vehicle"),
        box_label("trailer"),
        box_label("other person"),
        box_label("person"),
        box_label("bike"),
        box_label("motor"),
        {"id": "L9", "category": "drivable area", "poly2d": [{"vertices": [[0, 0], [1, 1]]}]},
        {"id": "L10", "category": "lane", "poly2d": []},
    ]
    (record,) = load_det(images, det_json, [frame("a", labels)])
    assert record["file_name"] == str(images / "a.jpg")
    assert (record["image_id"], record["height"], record["width"]) == ("a", 12, 20)
    assert record["labeled_tasks"] == ["detection"]
    assert "sem_seg_file_name" not in record and "drivable_file_name" not in record
    annos = record["annotations"]
    assert annos[0]["bbox"] == [1.0, 2.0, 11.0, 6.0]
    assert all(isinstance(v, float) for v in annos[0]["bbox"])
    assert all(a["bbox_mode"] == BoxMode.XYXY_ABS for a in annos)
    got = [(a["category_id"], a["iscrowd"]) for a in annos]
    # car, crowd pedestrian, other vehicle -> car, trailer -> truck, other person -> pedestrian,
    # legacy person/bike/motor -> pedestrian/bicycle/motorcycle; polygon labels skipped.
    assert got == [(2, 0), (0, 1), (2, 1), (3, 1), (0, 1), (0, 0), (7, 0), (6, 0)]


def test_null_or_missing_labels_mean_zero_objects(det_root):
    images, det_json = det_root
    for stem in ("a", "b"):
        write_image(images / f"{stem}.jpg")
    no_key = {"name": "b.jpg", "attributes": {}}
    dicts = load_det(images, det_json, [frame("a", None), no_key])
    assert [(d["image_id"], d["labeled_tasks"], d["annotations"]) for d in dicts] == [
        ("a", ["detection"], []),
        ("b", ["detection"], []),
    ]


def test_mixed_detection_and_drivable(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "drivable"
    for stem in ("a", "b", "c"):
        write_image(images / f"{stem}.jpg")
    for stem in ("b", "c"):
        write_mask(masks / f"{stem}.png")
    write_json(tmp_path / "det.json", [frame("a", [box_label("car")]), frame("b", [])])
    dicts = load_bdd100k(str(images), str(tmp_path / "det.json"), drivable_root=str(masks))
    assert [(d["image_id"], d["labeled_tasks"]) for d in dicts] == [
        ("a", ["detection"]),
        ("b", ["detection", "drivable"]),
        ("c", ["drivable"]),
    ]
    a, b, c = dicts
    assert "drivable_file_name" not in a and "annotations" not in c
    assert b["drivable_file_name"] == str(masks / "b.png")
    assert c["file_name"] == str(images / "c.jpg")
    assert not any("drivable_legacy" in d for d in dicts)


def test_a_mask_finds_its_image_whatever_the_extension_case(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "drivable"
    write_image(images / "upper.JPG")
    write_image(images / "long.jpeg")
    write_image(images / "both.JPG")
    write_image(images / "both.jpg")  # the BDD100K name wins over another case
    for stem in ("upper", "long", "both"):
        write_mask(masks / f"{stem}.png")
    dicts = load_bdd100k(str(images), drivable_root=str(masks))
    names = {d["image_id"]: os.path.basename(d["file_name"]) for d in dicts}
    assert names == {"upper": "upper.JPG", "long": "long.jpeg", "both": "both.jpg"}
    write_mask(masks / "none.png")  # no image of any extension
    with pytest.raises(BadSampleError, match=r"images/none\.jpg: image not found"):
        load_bdd100k(str(images), drivable_root=str(masks))


def test_legacy_drivable_and_2018_semantic_names(tmp_path):
    images = tmp_path / "images"
    drivable, sem = tmp_path / "drivable_maps" / "labels" / "train", tmp_path / "seg"
    write_image(images / "x.jpg")
    write_mask(drivable / "x_drivable_id.png")
    write_mask(drivable / "x_drivable_color.png")  # a colour map: not a label mask
    write_mask(sem / "x_train_id.png")
    (record,) = load_bdd100k(
        str(images), sem_seg_root=str(sem), drivable_root=str(drivable), legacy_drivable=True
    )
    assert record["image_id"] == "x"
    assert record["labeled_tasks"] == ["semantic", "drivable"]
    assert record["drivable_file_name"] == str(drivable / "x_drivable_id.png")
    assert record["drivable_legacy"] is True
    assert record["sem_seg_file_name"] == str(sem / "x_train_id.png")


def test_merge_by_image_unions_tasks_and_prefers_first_file_name():
    def d(image_id, file_name, **labels):
        tasks = [t for t, k in (("detection", "annotations"), ("semantic", "sem_seg_file_name"),
                                ("drivable", "drivable_file_name")) if k in labels]
        size = {"height": 6, "width": 8}
        return {"file_name": file_name, "image_id": image_id, **size, "labeled_tasks": tasks,
                **labels}

    det = [d("a", "100k/a.jpg", annotations=[]), d("b", "100k/b.jpg", annotations=[])]
    drivable = [d("a", "100k/a.jpg", drivable_file_name="a.png", drivable_legacy=True)]
    sem = [d("c", "10k/c.jpg", sem_seg_file_name="c_sem.png"),
           d("a", "10k/a.jpg", sem_seg_file_name="a_sem.png")]
    merged = merge_by_image(det, drivable, sem)
    assert [m["image_id"] for m in merged] == ["a", "b", "c"]
    a = merged[0]
    assert a["labeled_tasks"] == ["detection", "semantic", "drivable"]
    assert a["file_name"] == "100k/a.jpg"
    assert (a["sem_seg_file_name"], a["drivable_file_name"]) == ("a_sem.png", "a.png")
    assert a["drivable_legacy"] is True
    assert det[0]["labeled_tasks"] == ["detection"]  # inputs untouched

    with pytest.raises(ValueError, match="image 'a' is labeled for detection in two"):
        merge_by_image(det, [d("a", "x/a.jpg", annotations=[])])
    other_size = {**sem[1], "height": 7}
    with pytest.raises(ValueError, match="image 'a' has two sizes"):
        merge_by_image(det, [other_size])


# ---- bad input ------------------------------------------------------------


def _unknown_category(images, frames):
    frames[1]["labels"][0]["category"] = "spaceship"


def _x_reversed(images, frames):
    frames[1]["labels"][0]["box2d"]["x2"] = 0


def _y_reversed(images, frames):
    frames[1]["labels"][0]["box2d"]["y2"] = 0


def _no_box(images, frames):
    del frames[1]["labels"][0]["box2d"]


def _no_name(images, frames):
    del frames[1]["name"]


def _missing_image(images, frames):
    os.remove(images / "bad.jpg")


def _garbled_image(images, frames):
    (images / "bad.jpg").write_bytes(b"this is not a jpeg")


BAD_CASES = [
    (_unknown_category, r"det\.json: frame 'bad\.jpg', label 'L7' \('spaceship'\): unknown"),
    (_x_reversed, r"det\.json: frame 'bad\.jpg', label 'L7' \('car'\): box2d has x2 < x1"),
    (_y_reversed, r"det\.json: frame 'bad\.jpg', label 'L7' \('car'\): box2d has x2 < x1 or y2"),
    (_no_box, r"det\.json: frame 'bad\.jpg', label 'L7' \('car'\): label has no box2d"),
    (_no_name, r"det\.json: frame 1 has no 'name'"),
    (_missing_image, r"images/bad\.jpg: image not found \(labeled by .*det\.json \(frame 'bad"),
    (_garbled_image, r"images/bad\.jpg: unreadable image header"),
]


def _bad_tree(tmp_path, make_bad):
    """Frames "good" and "bad" (both with drivable masks); ``make_bad`` spoils "bad"."""
    images, masks = tmp_path / "images", tmp_path / "drivable"
    frames = [frame(stem, [box_label("car", (1, 1, 3, 3), "L7")]) for stem in ("good", "bad")]
    for stem in ("good", "bad"):
        write_image(images / f"{stem}.jpg")
        write_mask(masks / f"{stem}.png")
    make_bad(images, frames)
    write_json(tmp_path / "det.json", frames)
    return [str(images), str(tmp_path / "det.json"), None, str(masks)]


@pytest.mark.parametrize("make_bad, message", BAD_CASES, ids=[c[0].__name__ for c in BAD_CASES])
def test_bad_sample_raises(tmp_path, make_bad, message):
    args = _bad_tree(tmp_path, make_bad)
    with pytest.raises(BadSampleError, match=message):
        load_bdd100k(*args, on_bad_sample="raise")


@pytest.mark.parametrize("make_bad, message", BAD_CASES, ids=[c[0].__name__ for c in BAD_CASES])
def test_bad_sample_skipped_drops_the_image(tmp_path, caplog, make_bad, message):
    args = _bad_tree(tmp_path, make_bad)
    with caplog.at_level(logging.WARNING, logger=LOADER_LOG):
        dicts = load_bdd100k(*args, on_bad_sample="skip")
    kept = [(d["image_id"], d["labeled_tasks"]) for d in dicts]
    if make_bad is _no_name:  # the frame names no image: its image keeps the drivable label
        assert kept == [("bad", ["drivable"]), ("good", ["detection", "drivable"])]
    else:  # the drivable label of the bad image goes too
        assert kept == [("good", ["detection", "drivable"])]
    assert any(re.search(message, r.getMessage()) for r in caplog.records)
    assert "skipped 1 bad" in caplog.text


def test_whole_file_problems_raise_even_when_skipping(tmp_path):
    images, det_json = tmp_path / "images", tmp_path / "det.json"
    write_image(images / "a.jpg")
    skip = {"on_bad_sample": "skip"}
    with pytest.raises(BadSampleError, match=r"det\.json: detection label file not found"):
        load_bdd100k(str(images), str(det_json), **skip)
    det_json.write_text('[\n {"name": "a.jpg",}\n]')
    with pytest.raises(BadSampleError, match=r"det\.json: malformed JSON at line 2, column 19"):
        load_bdd100k(str(images), str(det_json), **skip)
    write_json(det_json, {"frames": []})
    with pytest.raises(BadSampleError, match=r"det\.json: expected a list of frames, got a JSON"):
        load_bdd100k(str(images), str(det_json), **skip)
    with pytest.raises(BadSampleError, match=r"nowhere: drivable mask folder not found"):
        load_bdd100k(str(images), drivable_root=str(tmp_path / "nowhere"), **skip)
    with pytest.raises(BadSampleError, match=r"no_images: image folder not found"):
        load_bdd100k(str(tmp_path / "no_images"), drivable_root=str(images), **skip)


# ---- registration ------------------------------------------------------------


def test_register_reads_nothing_and_get_names_the_path(tmp_path):
    name = "test_bdd100k_register_nothing"
    root = tmp_path / "does" / "not" / "exist"
    register_bdd100k(name, str(root / "images"), det_json=str(root / "det.json"))
    try:
        meta = MetadataCatalog.get(name)
        assert meta.tasks == ["detection"]
        assert meta.json_file == str(root / "det.json")
        assert not hasattr(meta, "sem_seg_root")  # None paths are left out
        assert meta.thing_classes == bdd100k_metadata()["thing_classes"]
        assert len(meta.stuff_classes) == 19 and meta.ignore_label == 255
        with pytest.raises(BadSampleError, match=re.escape(str(root / "images"))):
            DatasetCatalog.get(name)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture
def official_names():
    """Free the official names for a test, and restore what was registered before."""
    with freed_dataset_names(OFFICIAL_NAMES):
        yield


def make_official_tree(root):
    """100k: train a, b; val v, leak. 10k: train a, s, leak (leak is also 100k-val); val w."""
    base = root / "bdd100k"
    for split, stems in (("train", "ab"), ("val", ["v", "leak"])):
        for stem in stems:
            write_image(base / "images" / "100k" / split / f"{stem}.jpg")
            write_mask(base / "labels" / "drivable" / "masks" / split / f"{stem}.png")
        frames = [frame(stem, [box_label("car")]) for stem in stems]
        write_json(base / "labels" / "det_20" / f"det_{split}.json", frames)
    for split, stems in (("train", ["a", "s", "leak"]), ("val", ["w"])):
        for stem in stems:
            write_image(base / "images" / "10k" / split / f"{stem}.jpg")
            write_mask(base / "labels" / "sem_seg" / "masks" / split / f"{stem}.png")
    return base


def _tasks(name):
    return {d["image_id"]: d["labeled_tasks"] for d in DatasetCatalog.get(name)}


def test_official_names_and_leak(tmp_path, caplog, official_names):
    base = make_official_tree(tmp_path)
    register_all_bdd100k(str(tmp_path))
    assert set(OFFICIAL_NAMES) <= set(DatasetCatalog.list())
    with caplog.at_level(logging.INFO, logger="lv_adapter.data.datasets.builtin"):
        train = DatasetCatalog.get("bdd100k_multitask_train")
    assert "Dropped 1 10k-train images" in caplog.text
    assert {d["image_id"]: d["labeled_tasks"] for d in train} == {
        "a": ["detection", "semantic", "drivable"],
        "b": ["detection", "drivable"],
        "s": ["semantic"],
    }
    a = next(d for d in train if d["image_id"] == "a")
    assert a["file_name"] == str(base / "images" / "100k" / "train" / "a.jpg")
    assert a["sem_seg_file_name"] == str(base / "labels" / "sem_seg" / "masks" / "train" / "a.png")
    assert _tasks("bdd100k_multitask_val") == {
        "v": ["detection", "drivable"], "leak": ["detection", "drivable"], "w": ["semantic"]}
    assert _tasks("bdd100k_full_train") == _tasks("bdd100k_multitask_train")
    assert _tasks("bdd100k_sem_seg_train") == {s: ["semantic"] for s in ("a", "leak", "s")}
    assert MetadataCatalog.get("bdd100k_multitask_val").tasks == list(BUILTIN_TASKS)
    assert MetadataCatalog.get("bdd100k_drivable_val").tasks == ["drivable"]


def test_disjoint_settings_read_or_draw_lists(tmp_path, official_names):
    make_official_tree(tmp_path)
    register_all_bdd100k(str(tmp_path))
    # No split folder: the default sizes (thousands) cannot be drawn from this tiny tree.
    with pytest.raises(ValueError, match=r"semantic is 7000 but only 2 .*tools/make_splits\.py"):
        DatasetCatalog.get("bdd100k_disjoint_normal_train")
    folder = tmp_path / "bdd100k" / "splits" / "disjoint_normal"
    save_split({"detection": ["b"], "semantic": ["s"], "drivable": ["a"]}, str(folder))
    dicts = DatasetCatalog.get("bdd100k_disjoint_normal_train")
    assert {d["image_id"]: d["labeled_tasks"] for d in dicts} == {
        "a": ["drivable"], "b": ["detection"], "s": ["semantic"]}
    a = next(d for d in dicts if d["image_id"] == "a")
    assert "annotations" not in a and "sem_seg_file_name" not in a


def test_make_splits_tool(tmp_path, capsys, official_names):
    make_official_tree(tmp_path)
    register_all_bdd100k(str(tmp_path))
    path = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "make_splits.py")
    spec = importlib.util.spec_from_file_location("make_splits", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = ["--root", str(tmp_path), "--setting", "disjoint_balance", "--sizes",
            "semantic=1,detection=1,drivable=-1", "--seed", "3"]
    split = tool.main(argv)
    assert "semantic: 1 images" in capsys.readouterr().out
    assert (len(split["semantic"]), len(split["detection"])) == (1, 1)
    # Train images a (all tasks), b (detection, drivable), s (semantic): drivable takes the rest.
    assert split["drivable"] == sorted({"a", "b"} - set(split["semantic"] + split["detection"]))
    lists = tmp_path / "bdd100k" / "splits" / "disjoint_balance"
    assert (lists / "semantic.txt").read_text() == f"{split['semantic'][0]}\n"
    expected = {stem: [task] for task, stems in split.items() for stem in stems}
    assert _tasks("bdd100k_disjoint_balance_train") == expected
    with pytest.raises(SystemExit):
        tool.parse_args(["--root", "x", "--setting", "disjoint_normal", "--sizes", "lanes=3"])
