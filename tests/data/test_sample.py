"""Tests of the sample BDD100K generator: layout, roles, label formats and label/pixel agreement."""
import json
import os
import re
import runpy

import cv2
import numpy as np
import pytest

from lv_adapter.data.sample import MANIFEST, write_sample_bdd100k
from lv_adapter.tasks import IGNORE_LABEL
from lv_adapter.tasks.detection import DET_CLASSES
from lv_adapter.tasks.semantic import SEM_SEG_CLASSES

WIDTH, HEIGHT = 256, 144
STEM = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{8}$")
SPLITS = ("train", "val")
# Semantic class of each detection category's pixels (other vehicles are ignored: 255).
DET_SEM = {name: SEM_SEG_CLASSES.index(sem) for name, sem in (
    ("pedestrian", "person"), ("rider", "rider"), ("car", "car"), ("truck", "truck"),
    ("bus", "bus"), ("train", "train"), ("motorcycle", "motorcycle"), ("bicycle", "bicycle"),
    ("traffic light", "traffic light"), ("traffic sign", "traffic sign"))}
DET_SEM["other vehicle"] = IGNORE_LABEL
THING_SEM = set(DET_SEM.values())
ROAD = SEM_SEG_CLASSES.index("road")
TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "make_sample_bdd100k.py")


class Sample:
    """Reads back a written sample; ``root`` is its bdd100k folder."""

    def __init__(self, root, summary):
        self.root, self.summary = str(root), summary
        self.frames = {}  # (split, stem) -> det_20 frame
        for split in SPLITS:
            with open(os.path.join(self.root, "labels", "det_20", f"det_{split}.json")) as f:
                self.frames.update({(split, fr["name"][:-4]): fr for fr in json.load(f)})

    def stems(self, image_set, split):
        folder = os.path.join(self.root, "images", image_set, split)
        return {name[:-4] for name in os.listdir(folder)}

    def image_bytes(self, image_set, split, stem):
        with open(os.path.join(self.root, "images", image_set, split, stem + ".jpg"), "rb") as f:
            return f.read()

    def image(self, image_set, split, stem):
        path = os.path.join(self.root, "images", image_set, split, stem + ".jpg")
        return cv2.imread(path, cv2.IMREAD_COLOR)[..., ::-1]

    def mask(self, task, split, stem):
        path = os.path.join(self.root, "labels", task, "masks", split, stem + ".png")
        return cv2.imread(path, cv2.IMREAD_UNCHANGED)

    def detection_scenes(self):
        """(det frame, rgb) of every 100k image."""
        for (split, stem), frame in sorted(self.frames.items()):
            yield frame, self.image("100k", split, stem)

    def fully_labeled(self):
        """(det frame, sem mask, drivable mask, rgb) of every scene that has all three labels:
        the "both" scenes and the leaked ones (detection in val, semantic in train)."""
        for split in SPLITS:
            for stem in sorted(self.stems("100k", split)):
                sem_split = split if stem in self.stems("10k", split) else "train"
                if stem in self.stems("10k", sem_split):
                    yield (self.frames[(split, stem)], self.mask("sem_seg", sem_split, stem),
                           self.mask("drivable", split, stem), self.image("100k", split, stem))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    summary = write_sample_bdd100k(out, num_images=16, width=WIDTH, height=HEIGHT, seed=0)
    return Sample(out / "bdd100k", summary)


def _tree(root):
    """{relative path: bytes} of every file under ``root``."""
    out = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


def test_same_arguments_give_the_same_bytes_and_another_seed_does_not(tmp_path):
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        write_sample_bdd100k(tmp_path / name, num_images=12, width=128, height=72, seed=seed)
    a, b, c = (_tree(tmp_path / name) for name in "abc")
    assert a == b
    jpegs = {data for path, data in a.items() if path.endswith(".jpg")}
    assert not jpegs & {data for path, data in c.items() if path.endswith(".jpg")}
    assert {p for p in a if p.endswith(".jpg")} != {p for p in c if p.endswith(".jpg")}


def test_layout_one_label_file_per_image(sample):
    for split in SPLITS:
        det_images = sample.stems("100k", split)
        assert det_images == {stem for s, stem in sample.frames if s == split}
        assert det_images == {n[:-4] for n in os.listdir(
            os.path.join(sample.root, "labels", "drivable", "masks", split))}
        assert sample.stems("10k", split) == {n[:-4] for n in os.listdir(
            os.path.join(sample.root, "labels", "sem_seg", "masks", split))}
        for image_set, task in (("100k", "drivable"), ("10k", "sem_seg")):
            stems = sample.stems(image_set, split)
            assert len(stems) == sample.summary["images"][f"images/{image_set}/{split}"] > 0
            for stem in stems:
                assert STEM.match(stem)
                assert sample.image(image_set, split, stem).shape == (HEIGHT, WIDTH, 3)
                mask = sample.mask(task, split, stem)
                assert mask.dtype == np.uint8 and mask.shape == (HEIGHT, WIDTH)
    written = set(_tree(sample.root))
    assert not [path for path in written if os.path.basename(path).startswith(".tmp")]
    assert len(written) == 3 + 2 * sum(sample.summary["images"].values())  # + jsons, manifest


def test_every_role_is_present_in_both_splits(sample):
    for split in SPLITS:
        det, sem = sample.stems("100k", split), sample.stems("10k", split)
        both = det & sem
        assert both and det - sem and sem - det, split
        for stem in both:  # the same scene, byte for byte
            same = sample.image_bytes("100k", split, stem) == sample.image_bytes("10k", split, stem)
            assert same
    leaked = sample.stems("10k", "train") & sample.stems("100k", "val")
    assert leaked and sorted(leaked) == sample.summary["leaked"]
    assert not sample.stems("10k", "val") & sample.stems("100k", "train")
    for stem in leaked:
        assert sample.image_bytes("10k", "train", stem) == sample.image_bytes("100k", "val", stem)
    stems = [stem for (_, stem) in sample.frames]
    assert len(stems) == len(set(stems))  # a stem is in one det file only


def test_one_empty_frame_shows_an_empty_road(sample):
    empty = [(split, stem) for (split, stem), frame in sample.frames.items()
             if frame["labels"] is None]
    assert len(empty) == 1 and empty[0][0] == "train"
    assert [stem for _, stem in empty] == sample.summary["empty_frames"]
    stem = empty[0][1]
    sem, drivable = sample.mask("sem_seg", "train", stem), sample.mask("drivable", "train", stem)
    assert not set(np.unique(sem)) & THING_SEM
    assert (drivable == 0).any()
    for row in drivable:  # no thing stands on the road: its pixels form one run per row
        drivable_cols = np.flatnonzero(row < 2)
        if len(drivable_cols):
            assert drivable_cols[-1] - drivable_cols[0] + 1 == len(drivable_cols)
    assert all(isinstance(f["labels"], list) for key, f in sample.frames.items() if key != empty[0])


def test_crowd_and_other_vehicle_boxes(sample):
    labels = {split: [label for (s, _), frame in sample.frames.items() if s == split
                      for label in frame["labels"] or ()] for split in SPLITS}
    crowds = [label for label in labels["train"] if label["attributes"]["crowd"]]
    assert crowds and all(label["category"] == "pedestrian" for label in crowds)
    for split in SPLITS:
        assert any(label["category"] == "other vehicle" for label in labels[split])
    seen = {"crowd": 0, "other vehicle": 0}
    for frame, sem, _, _ in sample.fully_labeled():
        ignored = np.zeros(sem.shape, bool)
        for label in frame["labels"] or ():
            x1, y1, x2, y2 = _box(label)
            window = sem[y1:y2 + 1, x1:x2 + 1]
            visible = not label["attributes"]["occluded"]
            if label["attributes"]["crowd"]:  # one box around a group of people
                assert visible <= ((window == DET_SEM["pedestrian"]).mean() > 0.4)
                seen["crowd"] += 1
            if label["category"] == "other vehicle":
                assert visible <= ((window == IGNORE_LABEL).mean() > 0.4)
                ignored[y1:y2 + 1, x1:x2 + 1] = True
                seen["other vehicle"] += 1
        assert not ((sem == IGNORE_LABEL) & ~ignored).any()  # 255 only on other vehicles
    assert seen["crowd"] >= 1 and seen["other vehicle"] >= 1


def _box(label):
    """Integer inclusive box (x1, y1, x2, y2) of a det_20 label."""
    box = label["box2d"]
    coords = [box[k] for k in ("x1", "y1", "x2", "y2")]
    assert all(isinstance(v, float) and v == int(v) for v in coords)
    return tuple(int(v) for v in coords)


def test_boxes_are_the_extent_of_their_objects_pixels(sample):
    checked = {"car": 0, "all": 0}
    for frame, sem, _, _ in sample.fully_labeled():
        covered = np.zeros(sem.shape, bool)
        for label in frame["labels"] or ():
            x1, y1, x2, y2 = _box(label)
            assert 0 <= x1 <= x2 - 2 < WIDTH - 2 and 0 <= y1 <= y2 - 2 < HEIGHT - 2  # >= 3 px
            touches = x1 == 0 or y1 == 0 or x2 == WIDTH - 1 or y2 == HEIGHT - 1
            assert touches or not label["attributes"]["truncated"]
            own = sem[y1:y2 + 1, x1:x2 + 1] == DET_SEM[label["category"]]
            covered[y1:y2 + 1, x1:x2 + 1] |= own
            if label["attributes"]["occluded"] or label["attributes"]["crowd"]:
                continue
            # Nothing covers the object, so each side of its box runs through its pixels.
            assert own[0].any() and own[-1].any() and own[:, 0].any() and own[:, -1].any()
            checked["all"] += 1
            if label["category"] in ("car", "truck", "bus"):
                assert own.mean() > 0.6
                checked["car"] += label["category"] == "car"
        things = np.isin(sem, sorted(THING_SEM))
        assert not (things & ~covered).any()  # every thing pixel is inside a box of its class
    assert checked["car"] >= 2 and checked["all"] >= 8


def test_traffic_lights_show_their_lit_lamp(sample):
    # Lamps from top to bottom: red, yellow, green. The lit one is the brightest part of the
    # housing (brightness survives JPEG better than colour) and has the lamp's hue.
    checked = 0
    for frame, rgb in sample.detection_scenes():
        for label in frame["labels"] or ():
            colour = label["attributes"]["trafficLightColor"]
            assert (colour in ("R", "Y", "G")) == (label["category"] == "traffic light")
            x1, y1, x2, y2 = _box(label)
            attributes = label["attributes"]
            if colour == "NA" or attributes["occluded"] or attributes["truncated"] or y2 - y1 < 15:
                continue
            housing = rgb[y1:y2 + 1, x1 + 1:x2].astype(float)  # away from blurred side edges
            luma = housing @ [0.299, 0.587, 0.114]
            row = np.argmax(luma.mean(1))
            lamp = min(int(3 * row / len(luma)), 2)
            assert "RYG"[lamp] == colour, (colour, row, len(luma))
            r, g, b = housing.reshape(-1, 3)[np.argsort(luma.ravel())[-3:]].mean(0)
            assert {"R": r > g + 40, "Y": min(r, g) > b + 40, "G": g > r + 40}[colour], (r, g, b)
            checked += 1
    assert checked >= 1


def test_drivable_masks(sample):
    alternative = False
    for split in SPLITS:
        for stem in sample.stems("100k", split):
            drivable = sample.mask("drivable", split, stem)
            assert set(np.unique(drivable)) <= {0, 1, 2}
            assert (drivable[HEIGHT // 2:] == 0).any()  # the ego lane, below the horizon
            assert not (drivable[:int(HEIGHT * 0.36)] < 2).any()  # nothing above the horizon
            alternative = alternative or (drivable == 1).any()
    assert alternative
    for _, sem, drivable, _ in sample.fully_labeled():
        # Drivable pixels are exactly the visible road: things on it are background.
        assert np.array_equal(drivable < 2, sem == ROAD)


def test_semantic_masks(sample):
    for split in SPLITS:
        for stem in sample.stems("10k", split):
            values = set(np.unique(sample.mask("sem_seg", split, stem)).tolist())
            assert values <= set(range(len(SEM_SEG_CLASSES))) | {IGNORE_LABEL}
            assert ROAD in values and SEM_SEG_CLASSES.index("sky") in values


def test_det_20_frames_follow_the_scalabel_format(sample):
    allowed = set(DET_CLASSES) | {"other vehicle"}
    for split in SPLITS:
        ids = []
        for (s, stem), frame in sample.frames.items():
            if s != split:
                continue
            assert list(frame) == ["name", "attributes", "timestamp", "labels"]
            assert frame["name"] == stem + ".jpg" and frame["timestamp"] == 10000
            assert frame["attributes"]["timeofday"] in ("daytime", "night", "dawn/dusk")
            assert set(frame["attributes"]) == {"weather", "scene", "timeofday"}
            for label in frame["labels"] or ():
                assert list(label) == ["id", "category", "attributes", "box2d"]
                assert label["category"] in allowed and isinstance(label["id"], str)
                assert set(label["attributes"]) == {"occluded", "truncated",
                                                    "trafficLightColor", "crowd"}
                ids.append(label["id"])
        assert ids and len(ids) == len(set(ids))
    counts = {}
    for frame in sample.frames.values():
        for label in frame["labels"] or ():
            counts[label["category"]] = counts.get(label["category"], 0) + 1
    assert {k: v for k, v in sample.summary["boxes"].items() if v} == counts


def test_night_scenes_are_darker_than_day_scenes(sample):
    brightness = {}
    for (split, stem), frame in sample.frames.items():
        mean = sample.image("100k", split, stem).mean()
        brightness.setdefault(frame["attributes"]["timeofday"], []).append(mean)
    assert np.mean(brightness["night"]) < 0.6 * np.mean(brightness["daytime"])


@pytest.mark.parametrize("args, message", [
    ({"num_images": 11}, "num_images must be at least 12"),
    ({"width": 63}, "at least 64x36"),
    ({"height": 35}, "at least 64x36"),
])
def test_too_small_arguments_are_refused(tmp_path, args, message):
    with pytest.raises(ValueError, match=message):
        write_sample_bdd100k(tmp_path, **{"num_images": 12, "width": 64, "height": 36, **args})
    assert not os.path.exists(tmp_path / "bdd100k")


def test_smallest_allowed_sample(tmp_path):
    summary = write_sample_bdd100k(tmp_path, num_images=12, width=64, height=36, seed=3)
    assert summary["leaked"] and summary["empty_frames"] and summary["crowd_boxes"]
    assert all(count > 0 for count in summary["images"].values())


def test_refuses_foreign_data_and_replaces_an_earlier_sample(tmp_path):
    real = tmp_path / "real" / "bdd100k" / "labels" / "det_20" / "det_train.json"
    real.parent.mkdir(parents=True)
    real.write_text("[]")
    with pytest.raises(FileExistsError, match=MANIFEST):
        write_sample_bdd100k(tmp_path / "real", num_images=12, width=64, height=36)
    assert real.read_text() == "[]"

    out = tmp_path / "again"
    write_sample_bdd100k(out, num_images=16, width=64, height=36, seed=0)
    # What a killed run leaves behind: a temporary file of an atomic write.
    (out / "bdd100k" / "images" / "100k" / "train" / ".tmp-killed.jpg").write_bytes(b"")
    summary = write_sample_bdd100k(out, num_images=12, width=64, height=36, seed=1)
    with open(out / "bdd100k" / MANIFEST) as f:
        listed = set(json.load(f)["files"])
    assert set(_tree(out / "bdd100k")) == listed | {MANIFEST}  # no stale file survives
    assert sum(summary["images"].values()) == sum(1 for p in listed if p.endswith(".jpg"))


def test_command_line_tool(tmp_path, capsys):
    main = runpy.run_path(TOOL)["main"]
    main(["--out", str(tmp_path), "--num-images", "12", "--width", "96", "--height", "54"])
    out = capsys.readouterr().out
    assert "images/100k/train" in out and "leaked" in out
    assert os.path.isfile(tmp_path / "bdd100k" / "labels" / "det_20" / "det_val.json")
    with pytest.raises(SystemExit, match="num_images"):
        main(["--out", str(tmp_path / "x"), "--num-images", "3"])
