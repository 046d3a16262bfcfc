"""projects/LaneMarking's lane task as a user meets it: registered by the project only, its
datasets on sample scenes with lane masks, the mapper's checks, training and evaluating through
the project's train_net.py, and drawings."""
import json
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import REPO, project_imported, subprocess_env
from lv_adapter.data.errors import BadSampleError

PROJECT = os.path.join(REPO, "projects", "LaneMarking")
TINY = os.path.join(PROJECT, "configs", "quick_schedules")
NUM_IMAGES, WIDTH, HEIGHT = 16, 128, 72


@pytest.fixture(scope="module", autouse=True)
def lanes():
    """The project's package, imported for this module only (see conftest.project_imported)."""
    with project_imported("LaneMarking", "lv_lanes") as package:
        yield package


@pytest.fixture(scope="module")
def lane_root(tmp_path_factory):
    """A datasets root with the sample scenes and their lane masks (16 scenes, 128x72)."""
    from lv_lanes.sample import write_sample_lanes

    root = tmp_path_factory.mktemp("lane-sample")
    write_sample_lanes(root, NUM_IMAGES, WIDTH, HEIGHT, seed=0)
    return str(root)


def lane_files(root, split):
    folder = os.path.join(root, "bdd100k", "labels", "lane", "masks", split)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder))


def test_sample_lane_masks_hold_the_painted_markings_in_the_official_encoding(lane_root):
    from lv_lanes.encoding import CATEGORIES, decode
    from lv_lanes.files import read_lane_mask

    for split in ("train", "val"):
        images = os.listdir(os.path.join(lane_root, "bdd100k", "images", "100k", split))
        masks = lane_files(lane_root, split)
        assert sorted(os.path.basename(m)[:-4] for m in masks) == sorted(i[:-4] for i in images)
    categories = set()
    for path in lane_files(lane_root, "train") + lane_files(lane_root, "val"):
        fields = decode(read_lane_mask(path, (HEIGHT, WIDTH)))  # in the encoding, right size
        categories |= {CATEGORIES[c] for c in np.unique(fields["category"][fields["foreground"]])}
        assert 0 < fields["foreground"].mean() < 0.3  # every road has lines; most is background
    assert {"single white", "road curb"} <= categories
    manifest = json.load(open(os.path.join(lane_root, "bdd100k", "sample_manifest.json")))
    assert sum("labels/lane/masks" in f for f in manifest["files"]) == len(
        lane_files(lane_root, "train") + lane_files(lane_root, "val"))


def test_lane_datasets_and_the_multitask_sets_carry_lanes_on_the_100k_images(lane_root):
    from detectron2.data import MetadataCatalog

    from lv_adapter.data.datasets.builtin import load_multitask
    from lv_lanes.datasets import load_lanes

    lanes = load_lanes(lane_root, "train")
    assert lanes and all(d["labeled_tasks"] == ["lane"] for d in lanes)
    merged = {d["image_id"]: d for d in load_multitask(lane_root, "train")}
    for d in lanes:
        assert merged[d["image_id"]]["lane_file_name"] == d["lane_file_name"]
        assert "drivable" in merged[d["image_id"]]["labeled_tasks"]  # the same 100k image
    only_10k = [d for d in merged.values() if "drivable" not in d["labeled_tasks"]]
    assert only_10k and not any("lane" in d["labeled_tasks"] for d in only_10k)
    metadata = MetadataCatalog.get("bdd100k_multitask_val")
    assert metadata.tasks == ["detection", "semantic", "drivable", "lane"]
    assert len(metadata.lane_classes) == 33 and metadata.lane_classes[-1] == "background"
    assert MetadataCatalog.get("bdd100k_full_train_pseudo").tasks[-1] == "lane"


def test_the_mapper_reads_lanes_as_class_ids_and_refuses_bad_masks_naming_them(
        lane_root, tmp_path):
    from lv_adapter.config import build_config
    from lv_adapter.data import MultiTaskDatasetMapper
    from lv_lanes.datasets import load_lanes
    from lv_lanes.encoding import to_bytes

    cfg = build_config(os.path.join(TINY, "lane_tiny.yaml"), ["INPUT.RANDOM_FLIP", "none"])
    mapper = MultiTaskDatasetMapper(cfg, True)
    record = load_lanes(lane_root, "val")[0]
    lane = mapper(dict(record))["lane_seg"]
    truth = cv2.imread(record["lane_file_name"], cv2.IMREAD_UNCHANGED)
    assert lane.shape == truth.shape  # the training resize keeps the sample's 128x72
    assert np.array_equal(to_bytes(lane.numpy()), truth)
    bad = tmp_path / "bad.png"
    for mask, message in (
        (np.full((HEIGHT, WIDTH), 9, np.uint8), "values [9] are outside BDD100K's lane encoding"),
        (np.full((HEIGHT // 2, WIDTH), 255, np.uint8), "lane mask is 128x36 (WxH) but its image "
                                                       "is 128x72"),
    ):
        cv2.imwrite(str(bad), mask)
        with pytest.raises(BadSampleError, match=re.escape(f"{bad}: {message}")):
            mapper({**record, "lane_file_name": str(bad)})


def run(script, config, out, root, *opts):
    argv = [sys.executable, script, "--config-file", config, "OUTPUT_DIR", str(out),
            "MODEL.DEVICE", "cpu", *opts]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO,
                          env=subprocess_env(DETECTRON2_DATASETS=root))


@pytest.mark.same_calls
def test_the_root_train_net_does_not_know_the_lane_task(lane_root, tmp_path):
    unknown = "MODEL.TASKS has unknown tasks ['lane']; registered tasks: detection, semantic, " \
              "drivable (a project's tasks are registered when its package is imported"
    root_train_net = os.path.join(REPO, "train_net.py")
    lane_config = os.path.join(TINY, "lane_tiny.yaml")
    done = run(root_train_net, lane_config, tmp_path, lane_root)
    assert done.returncode != 0
    assert f"{lane_config}: {unknown}" in done.stderr, done.stderr[-2000:]
    assert "(Non-existent config key: MODEL.LANE_HEAD: a key of those tasks)" in done.stderr


@pytest.fixture(scope="module")
def lane_teacher(lane_root, tmp_path_factory):
    """The output folder of the tiny lane teacher, trained and evaluated by train_net.py."""
    out = tmp_path_factory.mktemp("lane-teacher")
    done = run(os.path.join(PROJECT, "train_net.py"), os.path.join(TINY, "lane_tiny.yaml"), out,
               lane_root)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.same_calls
def test_the_lane_teacher_trains_and_is_scored_as_the_lane_tool_scores_its_export(
        lane_root, lane_teacher, tmp_path):
    results = json.loads((lane_teacher / "inference" / "results.json").read_text())
    lane = results["lane"]  # one test dataset: its results alone
    assert {"F1_pix1", "F1_pix2", "F1_pix5", "F1_pix1/CATEGORY", "F1_pix5/single white"} <= set(
        lane)
    exported = lane_teacher / "inference" / "bdd100k_lane_val" / "bdd100k" / "lane"
    tool = os.path.join(PROJECT, "tools", "evaluate_lane.py")
    gt = os.path.join(lane_root, "bdd100k", "labels", "lane", "masks", "val")
    scored = subprocess.run([sys.executable, tool, "--gt", gt, "--pred", str(exported), "--json",
                             str(tmp_path / "tool.json")], capture_output=True, text=True,
                            env=subprocess_env())
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert "no prediction" not in scored.stdout  # every val image was exported
    assert json.loads((tmp_path / "tool.json").read_text()) == pytest.approx(lane)


@pytest.mark.same_calls
def test_the_lane_teacher_exports_with_its_project(lane_root, lane_teacher, tmp_path):
    cmd = [sys.executable, os.path.join(REPO, "tools", "export_model.py"), "--config-file",
           os.path.join(TINY, "lane_tiny.yaml"), "--output", str(tmp_path / "export"),
           "--project", PROJECT, "MODEL.WEIGHTS", str(lane_teacher / "model_final.pth")]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=subprocess_env(DETECTRON2_DATASETS=lane_root))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "lane: argmax_agreement 1\n" in done.stdout
    info = json.loads((tmp_path / "export" / "export.json").read_text())
    assert info["tasks"] == ["lane"] and len(info["classes"]["lane"]) == 33


@pytest.mark.same_calls
def test_lane_pseudo_labels_fill_the_images_without_lanes_and_a_four_task_student_trains(
        lane_root, lane_teacher, tmp_path):
    from lv_adapter.data.datasets.builtin import load_setting

    generate = [sys.executable, os.path.join(REPO, "tools", "generate_pseudo_labels.py"),
                "--config-file", os.path.join(TINY, "lane_tiny.yaml"), "--dataset",
                "bdd100k_full_train", "--project", PROJECT,
                "MODEL.WEIGHTS", str(lane_teacher / "model_final.pth"),
                "PSEUDO_LABELS.LANE_THRESH", "0.0"]  # a 4-iteration teacher is unsure
    done = subprocess.run(generate, capture_output=True, text=True, cwd=REPO,
                          env=subprocess_env(DETECTRON2_DATASETS=lane_root))
    assert done.returncode == 0, done.stderr[-3000:]
    pseudo = os.path.join(lane_root, "bdd100k", "pseudo", "full", "labels", "lane", "masks",
                          "train")
    lacking = sorted(d["image_id"] for d in load_setting(lane_root, "full")
                     if "lane" not in d["labeled_tasks"])
    assert lacking and sorted(n[:-4] for n in os.listdir(pseudo)) == lacking
    for name in os.listdir(pseudo):  # class ids (the byte encoding has no "unsure" value)
        assert cv2.imread(os.path.join(pseudo, name), cv2.IMREAD_UNCHANGED).max() <= 32
    done = run(os.path.join(PROJECT, "train_net.py"), os.path.join(TINY, "multitask4_tiny.yaml"),
               tmp_path, lane_root, "DATASETS.TRAIN", "('bdd100k_full_train_pseudo',)",
               "PSEUDO_LABELS.OPTIONAL_TASKS", "['detection', 'semantic', 'drivable']")
    assert done.returncode == 0, done.stderr[-3000:]
    log = (tmp_path / "log.txt").read_text()
    assert f"images per task: lane {len(lacking)}" in log
    results = json.loads((tmp_path / "inference" / "results.json").read_text())
    assert set(results) == {"bbox", "sem_seg", "drivable_seg", "lane"}  # four evaluators


@pytest.mark.same_calls
def test_the_dense_lane_head_trains_and_is_evaluated_through_train_net(lane_root, tmp_path):
    done = run(os.path.join(PROJECT, "train_net.py"),
               os.path.join(TINY, "lane_dense_tiny.yaml"), tmp_path, lane_root)
    assert done.returncode == 0, done.stderr[-3000:]
    log = (tmp_path / "log.txt").read_text()
    assert "LaneDenseHead" in log and "loss_lane_style" in log and "loss_lane_direction" in log
    results = json.loads((tmp_path / "inference" / "results.json").read_text())
    assert 0 <= results["lane"]["F1_pix5"] <= 100


def test_dense_head_scores_factorise_and_its_losses_count_lane_pixels_only():
    import torch
    from torch import nn

    from lv_lanes.dense_head import LaneDenseHead, class_scores
    from lv_lanes.encoding import CLASSES

    class Finest(nn.Module):
        def forward(self, levels):
            return levels[0]

    head = LaneDenseHead(pixel_decoder=Finest(), in_features=["p2"], hidden_dim=4, mask_dim=4,
                         stride=4, background_weight=0.2, loss_stride=1)
    features = torch.randn(1, 4, 2, 2, requires_grad=True)
    labels = torch.full((1, 8, 8), CLASSES.index("background"))
    labels[0, :, 0] = 255  # ignored
    losses = head.losses(head.predict(head.tower(features)), labels)
    assert losses["loss_lane_category"] > 0  # background pixels count for the category
    assert losses["loss_lane_style"] == losses["loss_lane_direction"] == 0  # no lane pixel
    labels[0, :, 3] = CLASSES.index("double yellow dashed vertical")
    losses = head.losses(head.predict(head.tower(features)), labels)
    assert losses["loss_lane_style"] > 0 and losses["loss_lane_direction"] > 0
    sum(losses.values()).backward()
    assert features.grad.abs().sum() > 0

    logits = torch.zeros(1, 13, 2, 2)
    logits[0, 6, 0, 0] = 5.0  # single white
    logits[0, 10, 0, 0] = 5.0  # dashed
    logits[0, 8, 1, 1] = 5.0  # background
    scores = class_scores(logits)
    assert scores.shape == (1, 33, 2, 2)
    assert torch.allclose(scores.sum(dim=1), torch.ones(1, 2, 2))
    assert CLASSES[scores[0, :, 0, 0].argmax()] == "single white dashed parallel"
    assert CLASSES[scores[0, :, 1, 1].argmax()] == "background"


def test_drawings_colour_lanes_by_category_and_dash_the_dashed_ones():
    from detectron2.data import Metadata

    from lv_adapter.utils.visualizer import draw_multitask
    from lv_lanes.encoding import CLASSES
    from lv_lanes.task import LANE_CATEGORY_COLORS

    image = np.full((60, 80, 3), 100, np.uint8)
    ids = np.full((60, 80), CLASSES.index("background"), np.int64)
    ids[:, 20:23] = CLASSES.index("single white solid parallel")
    ids[:, 50:53] = CLASSES.index("double yellow dashed parallel")
    picture = draw_multitask(image, Metadata(), {"lane": ids})
    panel = picture[:, 2 * 80:].astype(int)  # the lane panel, the third
    assert picture.shape == (60, 240, 3)

    def near(colour, column):  # the upper rows: each category's name is written lower down
        return np.abs(panel[:30, column] - np.array(colour)).sum(axis=1) < 60

    assert near(LANE_CATEGORY_COLORS["single white"], 21).all()  # solid: every row
    dashed = near(LANE_CATEGORY_COLORS["double yellow"], 51)
    assert 0.3 < dashed.mean() < 0.7  # dashes and gaps along the lane
    assert (panel[:30, 35] == 100).all()  # background: the image itself
