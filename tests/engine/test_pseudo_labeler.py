"""tools/generate_pseudo_labels.py: teachers' pseudo labels that load back through the BDD100K
loader, resume after a kill to the same bytes, split over processes, and clear errors."""
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog

import train_net
from conftest import REPO, freed_dataset_names, subprocess_env
from lv_adapter import build_config
from lv_adapter.data.datasets.bdd100k import load_bdd100k
from lv_adapter.data.datasets.builtin import register_all_bdd100k, split_folder
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.pseudo_labels import pseudo_label_paths, summary_path
from lv_adapter.data.readers import read_image, read_label_mask
from lv_adapter.data.splits import make_split, save_split
from lv_adapter.engine.predictor import Predictor
from lv_adapter.engine.pseudo_provenance import check_same_teacher, identity_path
from lv_adapter.tasks.masks import confident_labels

sys.path.insert(0, os.path.join(REPO, "tools"))
import generate_pseudo_labels as tool  # noqa: E402

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
TOOL = os.path.join(REPO, "tools", "generate_pseudo_labels.py")
DATASET = "bdd100k_disjoint_normal_train"
THRESHOLD_KEYS = {
    "detection": "PSEUDO_LABELS.DET_SCORE_THRESH",
    "semantic": "PSEUDO_LABELS.SEM_SEG_THRESH",
    "drivable": "PSEUDO_LABELS.DRIVABLE_THRESH",
}
SCORE_KEYS = {"semantic": "sem_seg", "drivable": "drivable_seg"}
# The teachers train on the split they label (each on its task's images): they never see the
# labels the split hides, which the tool checks.
TEACHER_DATA = ["DATASETS.TRAIN", f"('{DATASET}',)"]


@pytest.fixture(scope="module")
def datasets_root(sample_root, tmp_path_factory):
    """A copy of the sample with a disjoint_normal split (2 detection, 2 semantic images), the
    official names registered for it while this module runs."""
    root = tmp_path_factory.mktemp("datasets")
    shutil.copytree(os.path.join(sample_root, "bdd100k"), root / "bdd100k")
    with freed_dataset_names(n for n in DatasetCatalog.list() if n.startswith("bdd100k_")):
        register_all_bdd100k(str(root))
        dicts = DatasetCatalog.get("bdd100k_multitask_train")
        split = make_split(dicts, {"detection": 2, "semantic": 2, "drivable": -1}, seed=0)
        save_split(split, split_folder(str(root), "disjoint_normal"))
        yield root


@pytest.fixture(scope="module")
def teachers(datasets_root, image_root, tmp_path_factory):
    """Each task's tiny teacher, trained 2 iterations by train_net.py: task -> its ``weights``,
    ``outputs`` on the images lacking the task, and a ``threshold`` that keeps about half of
    its boxes or pixels (the median score or confidence), whatever the weights came out as."""
    found = {}
    for task in THRESHOLD_KEYS:
        out = tmp_path_factory.mktemp(f"teacher-{task}")
        argv = ["--config-file", TINY, *TEACHER_DATA, "MODEL.TASKS", f"['{task}']",
                "SOLVER.MAX_ITER", "2", "DATASETS.TEST", "()", "OUTPUT_DIR", str(out)]
        train_net.main(train_net.default_argument_parser().parse_args(argv))
        weights = str(out / "model_final.pth")
        outputs = teacher_outputs(weights, task, image_root, lacking(task))
        found[task] = {"weights": weights, "outputs": outputs,
                       "threshold": median_confidence(task, outputs.values())}
    return found


def teacher_outputs(weights, task, image_root, image_ids):
    """The teacher's outputs on the images, predicted outside of the tool."""
    cfg = build_config(TINY, ["MODEL.TASKS", f"['{task}']", "MODEL.WEIGHTS", weights])
    predict = Predictor(cfg)
    return {i: predict(read_image(os.path.join(image_root, f"{i}.jpg"), cfg.INPUT.FORMAT))
            for i in image_ids}


def median_confidence(task, outputs):
    if task == "detection":
        values = [o["instances"].scores for o in outputs]
    else:
        scores = [o[SCORE_KEYS[task]] for o in outputs]
        values = [(s.max(dim=0).values / s.sum(dim=0)).ravel() for s in scores]
    values = torch.cat(values)
    values = values[values.isfinite()]
    # No box (boxes of no area are dropped) or no finite share: the median would be NaN, which
    # no threshold can be; the fixture's premise (a teacher with outputs to threshold) failed.
    assert len(values), f"the tiny {task} teacher predicted nothing on the images lacking {task}"
    return round(float(values.median()), 4)


def teacher_opts(teachers, task):
    return [*TEACHER_DATA, "MODEL.TASKS", f"['{task}']", "MODEL.WEIGHTS",
            teachers[task]["weights"], THRESHOLD_KEYS[task], str(teachers[task]["threshold"])]


def argv_for(teachers, task, *extra, dataset=DATASET):
    return ["--config-file", TINY, "--dataset", dataset, *extra, *teacher_opts(teachers, task)]


@pytest.fixture(scope="module")
def labeled(datasets_root, teachers, tmp_path_factory):
    """One uninterrupted single-process run per task: task -> (root, summary)."""
    runs = {}
    for task in THRESHOLD_KEYS:
        root = tmp_path_factory.mktemp(f"pseudo-{task}")
        runs[task] = (root, tool.main(argv_for(teachers, task, "--output", str(root))))
    return runs


def lacking(task):
    return sorted(d["image_id"] for d in DatasetCatalog.get(DATASET)
                  if task not in d["labeled_tasks"])


@pytest.fixture(scope="module")
def image_root(datasets_root, tmp_path_factory):
    """Every train image in one folder (the loader takes one image folder; the images lacking a
    task come from both images/100k and images/10k)."""
    folder = tmp_path_factory.mktemp("images")
    for part in ("100k", "10k"):
        source = datasets_root / "bdd100k" / "images" / part / "train"
        for name in os.listdir(source):
            shutil.copyfile(source / name, folder / name)
    return str(folder)


def test_detection_labels_load_back_as_the_teachers_boxes(labeled, teachers, image_root):
    root, summary = labeled["detection"]
    det_json = pseudo_label_paths(str(root))["detection"]
    dicts = load_bdd100k(image_root, det_json=det_json)
    ids = lacking("detection")
    assert [d["image_id"] for d in dicts] == ids and 0 < len(ids) < len(DatasetCatalog.get(DATASET))
    outputs, threshold = teachers["detection"]["outputs"], teachers["detection"]["threshold"]
    num_boxes = too_small = 0
    for d in dicts:
        instances = outputs[d["image_id"]]["instances"]
        scores, boxes = instances.scores.double(), instances.pred_boxes.tensor.double()
        order = torch.sort(scores, descending=True, stable=True).indices
        order = order[scores[order] >= threshold]
        # under one pixel wide or high: no inclusive-pixel box2d; left out and counted
        big = (boxes[order, 2] - 1 >= boxes[order, 0]) & (boxes[order, 3] - 1 >= boxes[order, 1])
        too_small += int((~big).sum())
        kept = order[big]
        got = np.array([a["bbox"] for a in d["annotations"]]).reshape(-1, 4)
        np.testing.assert_allclose(got, boxes[kept].numpy(), atol=2e-3)
        assert [a["category_id"] for a in d["annotations"]] == instances.pred_classes[kept].tolist()
        num_boxes += len(kept)
    assert 0 < num_boxes < sum(len(o["instances"]) for o in outputs.values())
    with open(det_json) as f:
        scores = [label["score"] for frame in json.load(f) for label in frame["labels"]]
    assert min(scores) >= threshold
    assert summary["images"] == len(ids) and summary["boxes"] == num_boxes
    assert summary["boxes_below_one_pixel"] == too_small
    assert summary["threshold"] == {"PSEUDO_LABELS.DET_SCORE_THRESH": threshold}


@pytest.mark.parametrize("task", ["semantic", "drivable"])
def test_masks_load_back_as_the_teachers_confident_labels(labeled, teachers, image_root, task):
    root, summary = labeled[task]
    key = "sem_seg_root" if task == "semantic" else "drivable_root"
    dicts = load_bdd100k(image_root, **{key: pseudo_label_paths(str(root))[task]})
    ids = lacking(task)
    assert [d["image_id"] for d in dicts] == ids
    outputs, threshold = teachers[task]["outputs"], teachers[task]["threshold"]
    output_key = SCORE_KEYS[task]
    masks = []
    for d in dicts:
        file_key = "sem_seg_file_name" if task == "semantic" else "drivable_file_name"
        mask = read_label_mask(d[file_key], task, (d["height"], d["width"]))  # checks the ids
        expected = confident_labels(outputs[d["image_id"]][output_key], threshold)
        np.testing.assert_array_equal(mask, expected)
        masks.append(mask)
    values = np.concatenate([m.ravel() for m in masks])
    assert 255 in values and (values < 255).any()
    assert summary["ignored_share"] == pytest.approx(np.mean(values == 255), abs=1e-5)


def test_confidence_is_the_winning_share_of_the_summed_scores():
    scores = torch.tensor([[[3.0, 0.0, 0.2]], [[1.0, 0.0, 0.2]], [[0.0, 0.0, 0.2]]])  # 3 x 1 x 3
    # pixel 0: share 0.75; pixel 1: no score at all; pixel 2: a three-way tie (1/3)
    assert confident_labels(scores, 0.7).tolist() == [[0, 255, 255]]
    assert confident_labels(scores, 0.3).tolist() == [[0, 255, 0]]


def test_only_images_lacking_the_task_are_labeled(labeled):
    for task, (root, summary) in labeled.items():
        path = pseudo_label_paths(str(root))[task]
        if task == "detection":
            with open(path, encoding="utf-8") as f:
                names = [frame["name"] for frame in json.load(f)]
            assert not os.path.exists(os.path.join(root, ".parts"))  # merged, then removed
        else:
            names = os.listdir(path)
        stems = sorted(os.path.splitext(name)[0] for name in names)
        assert stems == lacking(task)
        with_task = {d["image_id"] for d in DatasetCatalog.get(DATASET)
                     if task in d["labeled_tasks"]}
        assert with_task and not with_task & set(stems)


def same_files(a, b):
    """Relative paths under ``a`` and ``b`` and whether every file has the same bytes; the
    teacher records must name the same teacher (their bytes may differ: a process that imported
    a project, as this one may have, records the project's config keys too)."""
    def files(root):
        return sorted(os.path.relpath(os.path.join(d, n), root)
                      for d, _, names in os.walk(root) for n in names)
    names = files(a)
    assert names == files(b)
    records = [n for n in names if re.fullmatch(r"teacher_\w+\.json", n)]
    for name in records:
        with open(os.path.join(a, name)) as f:
            check_same_teacher(b, json.load(f), has_labels=True)  # raises on another teacher
    _, mismatch, errors = filecmp.cmpfiles(a, b, [n for n in names if n not in records],
                                           shallow=False)
    return mismatch + errors


def run_tool(datasets_root, *argv):
    # The threads of this process in every process of the tool: the same bytes as the labels
    # written here need the same arithmetic (a CPU process otherwise gets its share of the cores,
    # and another thread count may round a score differently).
    env = subprocess_env(DETECTRON2_DATASETS=str(datasets_root),
                         OMP_NUM_THREADS=str(torch.get_num_threads()))
    return subprocess.run([sys.executable, TOOL, *argv], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["detection", "semantic"])
def test_a_killed_run_resumes_to_the_same_bytes(datasets_root, teachers, labeled, task, tmp_path):
    root = tmp_path / "pseudo"
    killed = run_tool(datasets_root, *argv_for(teachers, task, "--output", str(root),
                                               "--stop-after", "2"))
    assert killed.returncode == 3, killed.stderr[-3000:]
    assert not os.path.exists(summary_path(str(root), task))
    assert os.path.exists(identity_path(str(root), task))  # recorded before the first image
    if task == "detection":
        assert not os.path.exists(pseudo_label_paths(str(root))["detection"])
        stale = root / ".parts" / "detection" / ".tmp-0123456789abcdef.json"
    else:
        stale = root / "labels" / "sem_seg" / "masks" / "train" / ".tmp-0123456789abcdef.png"
    stale.write_bytes(b"half a file")  # what a kill during a write leaves
    summary = tool.main(argv_for(teachers, task, "--output", str(root)))
    assert summary == labeled[task][1]
    assert same_files(str(root), str(labeled[task][0])) == []


@pytest.mark.slow
def test_two_processes_label_every_image_once(datasets_root, teachers, labeled, tmp_path):
    root = tmp_path / "pseudo"
    result = run_tool(datasets_root, *argv_for(teachers, "detection", "--output", str(root),
                                               "--num-gpus", "2"))
    assert result.returncode == 0, result.stderr[-3000:]
    counts = [int(line.split("labeled ")[1].split()[0]) for line in result.stdout.splitlines()
              if line.startswith("process ")]
    assert len(counts) == 2 and sum(counts) == len(lacking("detection")) and min(counts) > 0
    assert same_files(str(root), str(labeled["detection"][0])) == []


def test_a_complete_run_is_not_repeated_unless_forced(labeled, teachers, capsys):
    root, summary = labeled["drivable"]
    mask = os.path.join(pseudo_label_paths(str(root))["drivable"], lacking("drivable")[0] + ".png")
    before = os.stat(mask).st_mtime_ns
    assert tool.main(argv_for(teachers, "drivable", "--output", str(root))) == summary
    assert "are complete" in capsys.readouterr().out
    assert os.stat(mask).st_mtime_ns == before
    assert tool.main(argv_for(teachers, "drivable", "--output", str(root), "--force")) == summary
    assert os.stat(mask).st_mtime_ns != before


def test_a_teacher_without_confident_boxes_is_warned_about(teachers, tmp_path, capsys):
    out = ["--output", str(tmp_path / "out")]
    summary = tool.main(argv_for(teachers, "detection", *out) + [
        "PSEUDO_LABELS.DET_SCORE_THRESH", "1.0"])  # no sigmoid score reaches 1
    assert summary["boxes"] == 0 and summary["images_without_boxes"] == summary["images"] > 0
    assert (f"{summary['images']} of {summary['images']} images got no detection box at or "
            "above PSEUDO_LABELS.DET_SCORE_THRESH") in capsys.readouterr().out


def test_limit_and_default_root(datasets_root, teachers, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(datasets_root))
    summary = tool.main(argv_for(teachers, "semantic", "--limit", "2"))
    root = datasets_root / "bdd100k" / "pseudo" / "disjoint_normal"
    assert summary["images"] == 2 and summary["limit"] == 2
    assert sorted(os.listdir(root / "labels" / "sem_seg" / "masks" / "train")) == [
        f"{i}.png" for i in lacking("semantic")[:2]]


def test_bad_inputs_get_clear_errors(datasets_root, teachers, tmp_path, capsys):
    out = ["--output", str(tmp_path / "out")]
    with pytest.raises(ValueError, match=r"exactly one task in MODEL.TASKS"):
        tool.main(["--config-file", TINY, "--dataset", DATASET, *out,
                   "MODEL.WEIGHTS", teachers["semantic"]["weights"]])
    missing = str(tmp_path / "nowhere.pth")
    with pytest.raises(FileNotFoundError, match=f"MODEL.WEIGHTS: teacher checkpoint {missing}"):
        tool.main(argv_for(teachers, "semantic", *out) + ["MODEL.WEIGHTS", missing])
    with pytest.raises(KeyError, match="--dataset 'bdd100k_nothing' is not registered"):
        tool.main(argv_for(teachers, "semantic", *out, dataset="bdd100k_nothing"))
    with pytest.raises(ValueError, match="--output is needed.*'bdd100k_det_train'"):
        tool.main(argv_for(teachers, "detection", dataset="bdd100k_det_train"))
    # the semantic teacher's weights do not fit a detection teacher
    with pytest.raises(ValueError, match="lacks .* entries"):
        tool.main(argv_for(teachers, "detection", *out)
                  + ["MODEL.WEIGHTS", teachers["semantic"]["weights"]])
    assert tool.main(argv_for(teachers, "detection", *out, dataset="bdd100k_det_train")) is None
    assert "nothing to do: every image of bdd100k_det_train is labeled for detection" in (
        capsys.readouterr().out)
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("task, value", [
    ("detection", "nan"), ("semantic", "inf"), ("drivable", "-0.1"), ("detection", "1.5")])
def test_a_threshold_that_is_no_score_is_refused_before_the_model_is_built(
        datasets_root, task, value, tmp_path):
    key = THRESHOLD_KEYS[task]
    missing = str(tmp_path / "no-teacher.pth")  # the threshold is checked before the weights
    with pytest.raises(ValueError, match=rf"{key} is {value.lstrip('+')}; it must be a number "
                                         r"in \[0, 1\]"):
        tool.main(["--config-file", TINY, "--dataset", DATASET, "--output", str(tmp_path / "out"),
                   "MODEL.TASKS", f"['{task}']", "MODEL.WEIGHTS", missing, key, value])
    assert not os.path.exists(tmp_path / "out")


def test_a_teacher_that_trained_on_the_hidden_labels_is_refused(teachers, tmp_path, capsys):
    root = tmp_path / "out"
    full = ["DATASETS.TRAIN", "('bdd100k_multitask_train',)"]  # every image's detection labels
    full_detection = {d["image_id"] for d in DatasetCatalog.get("bdd100k_multitask_train")
                      if "detection" in d["labeled_tasks"]}
    hidden = len(full_detection & set(lacking("detection")))  # the split hid their boxes
    assert hidden > 0
    with pytest.raises(ValueError, match=rf"the detection teacher trained on detection labels "
                                         rf"of {hidden} of the {len(lacking('detection'))} "
                                         rf"images of {DATASET}"):
        tool.main(argv_for(teachers, "detection", "--output", str(root)) + full)
    assert not os.path.exists(root)
    # what the weights were trained on counts too: the config.yaml train_net.py wrote beside them
    folder = tmp_path / "teacher"
    folder.mkdir()
    shutil.copy(teachers["detection"]["weights"], folder / "model_final.pth")
    (folder / "config.yaml").write_text("DATASETS:\n  TRAIN: [bdd100k_det_train]\n")
    with pytest.raises(ValueError, match="its training sets: .*bdd100k_det_train"):
        tool.main(argv_for(teachers, "detection", "--output", str(root))
                  + ["MODEL.WEIGHTS", str(folder / "model_final.pth")])
    summary = tool.main(argv_for(teachers, "detection", "--output", str(root),
                                 "--allow-overlap") + full)
    assert summary["allow_overlap"] is True
    record = json.loads(open(identity_path(str(root), "detection")).read())
    assert record["allowed_overlap"] == {"datasets": ["bdd100k_multitask_train", DATASET],
                                         "images": hidden}


def test_a_root_labeled_by_another_teacher_is_refused(labeled, teachers, tmp_path, capsys):
    root, summary = labeled["semantic"]
    threshold = teachers["semantic"]["threshold"]
    other = round(min(threshold + 0.1, 1.0) if threshold < 0.95 else threshold - 0.1, 4)
    with pytest.raises(ValueError, match=rf"(?s)written by another teacher.*"
                                         rf"PSEUDO_LABELS.SEM_SEG_THRESH: recorded {threshold}, "
                                         rf"now {other}.*--force"):
        tool.main(argv_for(teachers, "semantic", "--output", str(root))
                  + ["PSEUDO_LABELS.SEM_SEG_THRESH", str(other)])
    changed = tmp_path / "changed.pth"
    weights = torch.load(teachers["semantic"]["weights"], weights_only=False)
    name = next(k for k in weights["model"] if k.startswith("heads.semantic."))
    weights["model"][name] = weights["model"][name] + 1
    torch.save(weights, changed)
    with pytest.raises(ValueError, match=r"teacher weights: recorded .*, now .*changed.pth"):
        tool.main(argv_for(teachers, "semantic", "--output", str(root))
                  + ["MODEL.WEIGHTS", str(changed)])
    with pytest.raises(ValueError, match=r"MODEL.SEMANTIC_HEAD.NUM_QUERIES: recorded 6, now 7"):
        tool.main(argv_for(teachers, "semantic", "--output", str(root))
                  + ["MODEL.SEMANTIC_HEAD.NUM_QUERIES", "7"])
    # the same weights from another path are the same teacher: the labels are complete
    moved = tmp_path / "moved.pth"
    shutil.copy(teachers["semantic"]["weights"], moved)
    capsys.readouterr()
    assert tool.main(argv_for(teachers, "semantic", "--output", str(root))
                     + ["MODEL.WEIGHTS", str(moved)]) == summary
    assert "are complete" in capsys.readouterr().out


def test_labels_without_a_teacher_record_are_refused(labeled, teachers, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(labeled["drivable"][0], root)
    os.remove(identity_path(str(root), "drivable"))
    with pytest.raises(ValueError, match="no record of their teacher"):
        tool.main(argv_for(teachers, "drivable", "--output", str(root)))
    tool.main(argv_for(teachers, "drivable", "--output", str(root), "--force"))
    assert os.path.exists(identity_path(str(root), "drivable"))


def test_a_root_with_every_label_but_no_summary_is_finished(labeled, teachers, tmp_path):
    """A kill between the last label and the summary: the rerun labels nothing and finishes."""
    root = tmp_path / "copy"
    shutil.copytree(labeled["semantic"][0], root)
    os.remove(summary_path(str(root), "semantic"))
    assert tool.main(argv_for(teachers, "semantic", "--output", str(root))) == labeled[
        "semantic"][1]


@pytest.mark.slow
def test_a_process_without_images_does_its_share_of_nothing(datasets_root, teachers, tmp_path):
    result = run_tool(datasets_root, *argv_for(teachers, "drivable", "--output",
                                               str(tmp_path / "out"), "--num-gpus", "2",
                                               "--limit", "1"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "process 1: labeled 0 images" in result.stdout
    assert json.loads(open(summary_path(str(tmp_path / "out"), "drivable")).read())["images"] == 1


def test_a_malformed_detection_part_is_named(datasets_root, teachers, tmp_path):
    root = tmp_path / "pseudo"
    killed = run_tool(datasets_root, *argv_for(teachers, "detection", "--output", str(root),
                                               "--stop-after", "1"))
    assert killed.returncode == 3, killed.stderr[-3000:]
    (part,) = (root / ".parts" / "detection").glob("*.json")
    part.write_text("{ not json")
    with pytest.raises(ValueError, match=rf"{part}: unreadable detection part .*delete it"):
        tool.main(argv_for(teachers, "detection", "--output", str(root)))
    part.unlink()
    assert tool.main(argv_for(teachers, "detection", "--output", str(root)))["images"] == len(
        lacking("detection"))


def test_an_output_that_cannot_be_written_or_a_late_option_is_refused_first(teachers, tmp_path,
                                                                            capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=rf"--output {blocker}/root: {blocker} is a file"):
        tool.main(argv_for(teachers, "semantic", "--output", str(blocker / "root")))
    with pytest.raises(SystemExit):
        tool.main(argv_for(teachers, "semantic") + ["--output", str(tmp_path / "out")])
    assert "--output comes after the KEY VALUE config pairs" in capsys.readouterr().err


def test_an_unreadable_image_is_named(teachers, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    record = {"file_name": str(bad), "image_id": "broken", "height": 72, "width": 128,
              "labeled_tasks": ["semantic"]}
    DatasetCatalog.register("pseudo_test_broken", lambda: [record])
    try:
        with pytest.raises(BadSampleError, match="broken.jpg"):
            tool.main(argv_for(teachers, "drivable", "--output", str(tmp_path / "out"),
                               dataset="pseudo_test_broken"))
    finally:
        DatasetCatalog.pop("pseudo_test_broken")
    masks = pseudo_label_paths(str(tmp_path / "out"))["drivable"]
    assert not os.path.isdir(masks) or not os.listdir(masks)


def test_benchmark_scores_pseudo_labels_on_the_held_back_ground_truth(labeled, tmp_path):
    import benchmark_pseudo_labels as bench
    from lv_adapter.tasks.detection import DET_CLASSES
    from lv_adapter.utils.io import write_image, write_json

    def held_back(task):
        args = bench.parse_args(["--dataset", DATASET, "--output", str(tmp_path),
                                 "--teacher", f"{task}=teacher.yaml:teacher.pth"])
        records = bench.held_back(args, task)
        assert records and {r["image_id"] for r in records} < set(lacking(task))
        return records

    # Pseudo labels equal to the hidden ground truth score 100, through the written formats.
    records = held_back("detection")
    frames = [{"name": os.path.basename(r["file_name"]), "labels": [
        {"id": str(i), "category": DET_CLASSES[a["category_id"]], "score": 1.0,
         "box2d": dict(zip(("x1", "y1", "x2", "y2"), np.subtract(a["bbox"], [0, 0, 1, 1])))}
        for i, a in enumerate(r["annotations"]) if not a["iscrowd"]]} for r in records]
    write_json(pseudo_label_paths(str(tmp_path))["detection"], frames)
    assert bench.detection_quality(str(tmp_path), records)["AP50"] == pytest.approx(100)
    records = held_back("drivable")
    for r in records:
        mask = read_label_mask(r["drivable_file_name"], "drivable", (r["height"], r["width"]))
        mask = mask.copy()
        mask[: r["height"] // 2] = 255  # half the pixels not confident: not scored
        write_image(os.path.join(pseudo_label_paths(str(tmp_path))["drivable"],
                                 f"{r['image_id']}.png"), mask)
    quality = bench.segmentation_quality(str(tmp_path), "drivable", records)
    assert quality["mIoU"] == pytest.approx(100) and quality["kept %"] == pytest.approx(50)
    # The tiny teacher's own labels: the share of held-back pixels they keep
    root = str(labeled["drivable"][0])
    quality = bench.segmentation_quality(root, "drivable", records)
    kept = [read_label_mask(os.path.join(pseudo_label_paths(root)["drivable"],
                                         f"{r['image_id']}.png"), "drivable") != 255
            for r in records]
    assert quality["kept %"] == pytest.approx(100 * np.concatenate(kept, axis=None).mean())


@pytest.mark.slow
def test_benchmark_times_each_process_of_the_generator(datasets_root, teachers, tmp_path,
                                                       monkeypatch):
    import benchmark_pseudo_labels as bench
    monkeypatch.setenv("DETECTRON2_DATASETS", str(datasets_root))
    task = "semantic"
    args = bench.parse_args(["--dataset", DATASET, "--output", str(tmp_path), "--num-gpus", "2",
                             "--teacher", f"{task}={TINY}:{teachers[task]['weights']}",
                             *TEACHER_DATA, "MODEL.TASKS", f"['{task}']"])
    per_process, total = bench.throughput(*args.teacher[0], args)
    assert len(per_process) == 2 and min(per_process) > 0
    assert 0 < total <= sum(per_process) + 1e-9
    assert len(os.listdir(pseudo_label_paths(str(tmp_path / task))[task])) == len(lacking(task))
