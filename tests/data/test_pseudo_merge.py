"""Pseudo labels merged with ground truth: precedence, errors, the loader, evaluators, train_net.

The tests write their own pseudo-label roots in the generator's layout
(:mod:`lv_adapter.data.pseudo_labels`): each image gets, for every task it lacks, a copy of
another image's ground truth (masks as they are; detection frames with a score per label).
"""
import contextlib
import json
import logging
import os
import shutil
import sys
import uuid

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, Instances

import train_net
from bad_data import TINY, read_log, reset_process_state, train_args
from conftest import REPO
from lv_adapter.config import build_config
from lv_adapter.data import MultiTaskDatasetMapper
from lv_adapter.data.datasets.builtin import official_paths
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.pseudo_labels import (
    PSEUDO_TASKS_KEY,
    default_pseudo_root,
    merge_pseudo_labels,
    pseudo_label_paths,
    register_with_pseudo_labels,
    summary_path,
)
from lv_adapter.data.splits import SETTINGS
from lv_adapter.evaluation import build_multitask_evaluator
from lv_adapter.modeling.meta_arch.multitask import MultiTaskModel
from lv_adapter.tasks import BUILTIN_TASKS, DETECTION, DRIVABLE, SEMANTIC, get_task
from lv_adapter.utils.io import write_json

sys.path.insert(0, os.path.join(REPO, "tools"))
import check_dataset  # noqa: E402

BASE = "bdd100k_full_train"
PSEUDO = "bdd100k_full_train_pseudo"  # the builtin name: BASE + <root>/bdd100k/pseudo/full
GHOST = "ghost-00000000"  # an image the training set does not have
MASK_KEYS = {SEMANTIC: "sem_seg", DRIVABLE: "drivable_seg"}


def write_pseudo_root(pseudo_root, base_dicts, datasets_root):
    """Pseudo labels for every task each image of ``base_dicts`` lacks, plus one pseudo label
    per task for an image that has ground truth of it (ground truth must win) and a detection
    frame of an unknown image. Returns the donor dict of each task."""
    paths = pseudo_label_paths(pseudo_root)
    with open(official_paths(str(datasets_root), "train")["det_json"], encoding="utf-8") as f:
        gt_frames = {os.path.splitext(frame["name"])[0]: frame for frame in json.load(f)}
    donors = {task: next(d for d in base_dicts if task in d["labeled_tasks"])
              for task in BUILTIN_TASKS}
    donor_labels = gt_frames[donors[DETECTION]["image_id"]]["labels"]
    frames = []
    for d in base_dicts:
        # the donor itself has ground truth of every task it gives: a pseudo label to override
        tasks = [t for t in BUILTIN_TASKS if t not in d["labeled_tasks"] or d is donors[t]]
        if DETECTION in tasks:
            frames.append(_scored_frame(d["image_id"], donor_labels))
        for task in (SEMANTIC, DRIVABLE):
            if task in tasks:
                os.makedirs(paths[task], exist_ok=True)
                donor = donors[task][get_task(task).label_keys[0]]
                shutil.copyfile(donor, os.path.join(paths[task], d["image_id"] + ".png"))
    frames.append(_scored_frame(GHOST, donor_labels))
    write_json(paths[DETECTION], frames)
    counts = {t: len(os.listdir(paths[t])) for t in (SEMANTIC, DRIVABLE)}
    counts[DETECTION] = len(frames)
    for task in BUILTIN_TASKS:
        write_json(summary_path(pseudo_root, task), {"task": task, "images": counts[task]})
    return donors


def _scored_frame(stem, labels):
    return {"name": stem + ".jpg", "labels": [{**label, "score": 0.75} for label in labels]}


@pytest.fixture(scope="module")
def pseudo_root(sample_root):
    """The default pseudo root of the ``full`` setting in the sample, written for this module."""
    root = default_pseudo_root(sample_root, "full")
    donors = write_pseudo_root(root, DatasetCatalog.get(BASE), sample_root)
    yield root, donors
    shutil.rmtree(root)


@contextlib.contextmanager
def registered_copy(pseudo_root, tmp_path):
    """A copy of ``pseudo_root`` registered with the sample's full train set; yields both."""
    copy = str(tmp_path / "pseudo")
    shutil.copytree(pseudo_root, copy)
    name = f"pseudo_copy_{uuid.uuid4().hex[:8]}"
    register_with_pseudo_labels(name, BASE, copy)
    try:
        yield name, copy
    finally:
        DatasetCatalog.pop(name, None)
        MetadataCatalog.pop(name, None)
        reset_process_state()


def test_ground_truth_wins_per_task_and_per_image(pseudo_root, caplog):
    root, donors = pseudo_root
    base = DatasetCatalog.get(BASE)
    with caplog.at_level(logging.INFO, logger="lv_adapter"):
        merged = DatasetCatalog.get(PSEUDO)
    assert [d["image_id"] for d in merged] == [d["image_id"] for d in base]
    filled = {task: 0 for task in BUILTIN_TASKS}
    for b, m in zip(base, merged):
        assert m["labeled_tasks"] == list(BUILTIN_TASKS)  # every task: ground truth or pseudo
        assert m[PSEUDO_TASKS_KEY] == [t for t in BUILTIN_TASKS if t not in b["labeled_tasks"]]
        for task in BUILTIN_TASKS:
            label_keys = get_task(task).label_keys
            keys = [k for k in label_keys if k in m]
            if task in b["labeled_tasks"]:  # ground truth, untouched, even where pseudo exists
                assert {k: m[k] for k in keys} == {k: b[k] for k in label_keys if k in b}
            else:
                filled[task] += 1
                if task == DETECTION:
                    assert m["annotations"] and all(a["score"] == 0.75 for a in m["annotations"])
                else:
                    assert m[keys[0]] == os.path.join(pseudo_label_paths(root)[task],
                                                      b["image_id"] + ".png")
    assert all(filled.values()), filled  # the sample lacks some labels of every task
    log = caplog.text
    assert (f"Pseudo labels from {root} fill images per task: detection {filled[DETECTION]}, "
            f"semantic {filled[SEMANTIC]}, drivable {filled[DRIVABLE]}") in log
    assert "Ground truth wins over the pseudo labels of" in log
    assert "detection 1, semantic 1, drivable 1; those pseudo labels are not used" in log
    assert f"1 detection pseudo labels of {root} are of images not in the dataset" in log
    assert GHOST in log


def test_merge_fills_only_the_missing_tasks_of_each_image():
    dicts = [
        {"image_id": "a", "labeled_tasks": [DETECTION], "annotations": ["gt-box"]},
        {"image_id": "b", "labeled_tasks": [SEMANTIC], "sem_seg_file_name": "gt-b.png"},
    ]
    pseudo = {
        DETECTION: {"a": {"annotations": ["pseudo-a"]}, "b": {"annotations": ["pseudo-b"]}},
        SEMANTIC: {"a": {"sem_seg_file_name": "pseudo-a.png"},
                   "b": {"sem_seg_file_name": "pseudo-b.png"}},
    }
    a, b = merge_pseudo_labels(dicts, pseudo)
    assert a == {"image_id": "a", "labeled_tasks": [DETECTION, SEMANTIC],
                 "annotations": ["gt-box"], "sem_seg_file_name": "pseudo-a.png",
                 PSEUDO_TASKS_KEY: [SEMANTIC]}
    assert b == {"image_id": "b", "labeled_tasks": [DETECTION, SEMANTIC],
                 "annotations": ["pseudo-b"], "sem_seg_file_name": "gt-b.png",
                 PSEUDO_TASKS_KEY: [DETECTION]}
    assert dicts[0]["labeled_tasks"] == [DETECTION]  # the input is not modified
    assert merge_pseudo_labels(dicts, {})[0][PSEUDO_TASKS_KEY] == []


def test_every_setting_has_a_pseudo_name_with_its_default_root(sample_root):
    for setting in SETTINGS:
        metadata = MetadataCatalog.get(f"bdd100k_{setting}_train_pseudo")
        assert metadata.pseudo_root == default_pseudo_root(sample_root, setting)
        assert metadata.tasks == MetadataCatalog.get(f"bdd100k_{setting}_train").tasks
    with pytest.raises(KeyError, match="'no_such_set' is not registered"):
        register_with_pseudo_labels("x_pseudo", "no_such_set", "/nowhere")


def test_an_unfinished_generation_stops_training_naming_the_root_and_the_tool(
    pseudo_root, tmp_path
):
    with registered_copy(pseudo_root[0], tmp_path) as (name, root):
        os.remove(summary_path(root, SEMANTIC))
        with pytest.raises(BadSampleError) as e:
            train_net.main(train_args(tmp_path / "out", "DATASETS.TRAIN", f"('{name}',)"))
    message = str(e.value)
    assert message.startswith(f"{root}: the semantic pseudo labels are incomplete")
    assert summary_path(root, SEMANTIC) in message
    assert "tools/generate_pseudo_labels.py" in message


def test_a_task_without_pseudo_labels_is_logged_and_left_to_ground_truth(
    pseudo_root, tmp_path, caplog
):
    with registered_copy(pseudo_root[0], tmp_path) as (name, root):
        shutil.rmtree(pseudo_label_paths(root)[DRIVABLE])
        os.remove(summary_path(root, DRIVABLE))
        with caplog.at_level(logging.INFO, logger="lv_adapter"):
            dicts = DatasetCatalog.get(name)
    assert f"no drivable pseudo labels under {root}" in caplog.text
    assert not [d for d in dicts if DRIVABLE in d[PSEUDO_TASKS_KEY]]
    assert [d for d in dicts if SEMANTIC in d[PSEUDO_TASKS_KEY]]


def test_training_a_task_whose_teacher_never_ran_is_refused_unless_optional(pseudo_root, tmp_path):
    with registered_copy(pseudo_root[0], tmp_path) as (name, root):
        shutil.rmtree(pseudo_label_paths(root)[DRIVABLE])
        os.remove(summary_path(root, DRIVABLE))
        lacking = sum(DRIVABLE not in d["labeled_tasks"] for d in DatasetCatalog.get(name))
        assert lacking > 0
        opts = ["DATASETS.TRAIN", f"('{name}',)", "SOLVER.MAX_ITER", "1"]
        with pytest.raises(ValueError) as e:
            train_net.main(train_args(tmp_path / "out", *opts))
        assert f"{name}: no drivable pseudo labels under {root}" in str(e.value)
        assert f"while {lacking} training images lack drivable labels" in str(e.value)
        assert f"tools/generate_pseudo_labels.py --config-file <drivable teacher config> " \
               f"--dataset {BASE} --output {root}" in str(e.value)
        train_net.main(train_args(tmp_path / "ok", *opts,
                                  "PSEUDO_LABELS.OPTIONAL_TASKS", "['drivable']"))
        assert (tmp_path / "ok" / "model_final.pth").is_file()


def test_a_root_with_fewer_labels_than_its_summary_counts_is_refused(pseudo_root, tmp_path):
    with registered_copy(pseudo_root[0], tmp_path) as (name, root):
        folder = pseudo_label_paths(root)[SEMANTIC]
        masks = sorted(os.listdir(folder))
        os.remove(os.path.join(folder, masks[0]))
        with pytest.raises(BadSampleError) as e:
            train_net.main(train_args(tmp_path / "out", "DATASETS.TRAIN", f"('{name}',)"))
    assert e.value.path == folder
    assert (f"holds semantic pseudo labels of {len(masks) - 1} images but "
            f"{summary_path(root, SEMANTIC)} counts {len(masks)}") in e.value.problem


@pytest.mark.parametrize("content, problem", [
    ('[{"name": "a.jpg", "labels": [', "malformed JSON at line 1"),
    ('[{"name": "a.jpg", "labels": [{"category": "car", "box2d": '
     '{"x1": 1, "y1": 1, "x2": 5, "y2": 5}}]}]', "'score' must be a number in [0, 1], got None"),
])
def test_a_bad_pseudo_detection_file_is_named(pseudo_root, tmp_path, content, problem):
    with registered_copy(pseudo_root[0], tmp_path) as (name, root):
        det_json = pseudo_label_paths(root)[DETECTION]
        with open(det_json, "w", encoding="utf-8") as f:
            f.write(content)
        with pytest.raises(BadSampleError) as e:
            DatasetCatalog.get(name)
    assert e.value.path == det_json
    assert problem in e.value.problem


def test_bad_pseudo_masks_are_named_by_the_mapper_and_check_dataset(
    pseudo_root, tmp_path, capsys
):
    with registered_copy(pseudo_root[0], tmp_path) as (name, root):
        records = [d for d in DatasetCatalog.get(name) if SEMANTIC in d[PSEUDO_TASKS_KEY]]
        small, wrong = records[0]["sem_seg_file_name"], records[1]["sem_seg_file_name"]
        mask = cv2.imread(small, cv2.IMREAD_UNCHANGED)
        cv2.imwrite(small, cv2.resize(mask, (64, 36), interpolation=cv2.INTER_NEAREST))
        cv2.imwrite(wrong, np.full_like(mask, 77))
        mapper = MultiTaskDatasetMapper(build_config(TINY, ["MODEL.DEVICE", "cpu"]), True)
        with pytest.raises(BadSampleError, match="semantic mask is 64x36") as e:
            mapper(records[0])
        assert e.value.path == small
        assert check_dataset.main([name, "--num-workers", "0"]) == 1
    out = capsys.readouterr().out
    assert "semantic   labeled on 11 images (6 of them pseudo labels)" in out
    assert f"{small}: semantic mask is 64x36 (WxH) but its image is 128x72" in out
    assert f"{wrong}: semantic mask holds values [77] outside the valid ids 0..18" in out


@pytest.mark.slow
def test_the_pseudo_flags_and_labels_reach_the_model_through_train_net(
    pseudo_root, tmp_path, monkeypatch
):
    root, donors = pseudo_root
    expected = {d["image_id"]: d for d in DatasetCatalog.get(PSEUDO)}
    seen = []
    forward = MultiTaskModel.forward

    def recording_forward(self, batched_inputs):
        if self.training:
            seen.extend(batched_inputs)
        return forward(self, batched_inputs)

    monkeypatch.setattr(MultiTaskModel, "forward", recording_forward)
    try:
        train_net.main(train_args(tmp_path, "DATASETS.TRAIN", f"('{PSEUDO}',)",
                                  "SOLVER.MAX_ITER", 3, "SOLVER.IMS_PER_BATCH", 4))
    finally:
        reset_process_state()
    assert os.path.isfile(tmp_path / "model_final.pth")
    assert "of which pseudo labels: detection 2, semantic 6, drivable 2" in read_log(tmp_path)
    assert len(seen) == 12
    for x in seen:
        record = expected[x["image_id"]]
        assert x[PSEUDO_TASKS_KEY] == tuple(record[PSEUDO_TASKS_KEY])
        assert x["labeled_tasks"] == BUILTIN_TASKS
        for task in set(x[PSEUDO_TASKS_KEY]) & set(MASK_KEYS):
            donor = cv2.imread(donors[task][get_task(task).label_keys[0]], cv2.IMREAD_UNCHANGED)
            mask = x[MASK_KEYS[task]].numpy()
            assert np.array_equal(mask, donor) or np.array_equal(mask, donor[:, ::-1])
        if DETECTION in x[PSEUDO_TASKS_KEY]:  # every written pseudo box is a target
            assert len(x["instances"]) > 0
    assert any(x[PSEUDO_TASKS_KEY] for x in seen) and any(not x[PSEUDO_TASKS_KEY] for x in seen)


def _ground_truth_tasks(record):
    return [t for t in record["labeled_tasks"] if t not in record.get(PSEUDO_TASKS_KEY, ())]


def _perfect_outputs(record):
    """Outputs that match the ground truth of ``record``; a constant guess where it has none."""
    h, w = record["height"], record["width"]
    tasks = _ground_truth_tasks(record)
    boxes = [a for a in record["annotations"] if not a["iscrowd"]] if DETECTION in tasks else []
    instances = Instances((h, w))
    instances.pred_boxes = Boxes(torch.tensor([a["bbox"] for a in boxes]).reshape(-1, 4))
    instances.scores = torch.ones(len(boxes))
    instances.pred_classes = torch.tensor([a["category_id"] for a in boxes], dtype=torch.int64)
    out = {"instances": instances}
    for task, num_classes in ((SEMANTIC, 19), (DRIVABLE, 3)):
        mask = np.zeros((h, w), np.int64)
        if task in tasks:
            path = record[get_task(task).label_keys[0]]
            mask = cv2.imread(path, cv2.IMREAD_UNCHANGED).astype(np.int64)
            mask[mask == 255] = 0
        one_hot = torch.nn.functional.one_hot(torch.from_numpy(mask), num_classes)
        out[MASK_KEYS[task]] = one_hot.permute(2, 0, 1).float()
    return out


def _evaluate(name, base_records):
    evaluator = build_multitask_evaluator(BUILTIN_TASKS, name)
    evaluator.reset()
    for record in base_records:
        inputs = [{k: record[k] for k in ("file_name", "image_id", "height", "width")}]
        evaluator.process(inputs, [_perfect_outputs(record)])
    return evaluator.evaluate()


def test_evaluators_score_ground_truth_only(pseudo_root, caplog):
    base = DatasetCatalog.get(BASE)
    with caplog.at_level(logging.INFO, logger="lv_adapter"):
        results = _evaluate(PSEUDO, base)
    # Perfect on ground truth; the pseudo-labeled images (constant guesses) are not scored.
    assert results["bbox"]["AP50"] == pytest.approx(100)
    assert results["sem_seg"]["mIoU"] == pytest.approx(100)
    assert results["drivable_seg"]["mIoU"] == pytest.approx(100)
    expected = _evaluate(BASE, base)  # the same outputs on the ground truth alone
    assert json.dumps(results, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert f"Skipped the semantic pseudo labels of 6 images of '{PSEUDO}'" in caplog.text
