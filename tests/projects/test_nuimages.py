"""projects/NuImages: nuImages v1.0 tables -> dataset dicts and semantic masks, with the checks a
bad table deserves, and the multi-task model with nuImages' classes through its train_net.py."""
import collections
import glob
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

from conftest import REPO, subprocess_env
from lv_adapter import build_config
from lv_adapter.data.classes import config_task_classes
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.scenes import draw_scene
from lv_adapter.data.scenes.canvas import SEM
from lv_adapter.modeling.adapter.prompts import build_task_prompts

PROJECT = os.path.join(REPO, "projects", "NuImages")
sys.path.append(PROJECT)  # after the repository: "train_net" stays the root one
from lv_nuimages.categories import DET_CLASSES, SEM_CLASSES  # noqa: E402
from lv_nuimages.masks import decode_mask, encode_mask, write_semantic_masks  # noqa: E402
from lv_nuimages.nuimages import frames, load_nuimages  # noqa: E402
from lv_nuimages.sample import CATEGORY_OF, write_sample_nuimages  # noqa: E402

TINY = os.path.join(PROJECT, "configs", "quick_schedules", "lv_adapter_tiny.yaml")
MULTITASK = os.path.join(PROJECT, "configs", "quick_schedules", "multitask_tiny.yaml")
NUM_IMAGES, WIDTH, HEIGHT = 8, 128, 72


@pytest.fixture(scope="module")
def nuimages_root(sample_root):
    """The tests' datasets root with a generated nuImages set (6 train + 2 val key frames)."""
    if not os.path.isdir(os.path.join(sample_root, "nuimages")):
        write_sample_nuimages(sample_root, NUM_IMAGES, WIDTH, HEIGHT, seed=0)
    return sample_root


def copy_set(nuimages_root, tmp_path):
    """A copy of the generated set to break; returns (root, v1.0-train table folder)."""
    shutil.copytree(os.path.join(nuimages_root, "nuimages"), tmp_path / "nuimages")
    return str(tmp_path), tmp_path / "nuimages" / "v1.0-train"


def edit_table(folder, name, change):
    path = folder / f"{name}.json"
    rows = json.loads(path.read_text())
    change(rows)
    path.write_text(json.dumps(rows))
    return str(path)


def test_masks_round_trip_and_refuse_a_wrong_size_or_garbage():
    binary = np.zeros((5, 7), bool)
    binary[1:3, 2:6] = True
    mask = encode_mask(binary)
    assert mask["size"] == [5, 7] and isinstance(mask["counts"], str)
    assert np.array_equal(decode_mask(mask, 5, 7, "f:t"), binary)
    with pytest.raises(BadSampleError, match=r"f:t: mask is 7x5 \(WxH\) but its image is 8x5"):
        decode_mask(mask, 5, 8, "f:t")
    with pytest.raises(BadSampleError, match="f:t: mask is not"):
        decode_mask({"size": [5, 7], "counts": "not base64!"}, 5, 7, "f:t")


# The scenes' det_20 categories as the sample writes them, by their nuImages detection class
# (None: a category without one, here "other person" -> human.pedestrian.wheelchair).
CLASS_OF_SCENE_CATEGORY = {
    "pedestrian": "pedestrian", "rider": "pedestrian", "car": "car", "truck": "truck",
    "bus": "bus", "train": "bus", "other vehicle": "construction_vehicle", "trailer": "trailer",
    "motorcycle": "motorcycle", "bicycle": "bicycle", "other person": None,
}


def test_key_frames_load_with_the_detection_classes_and_masks_of_the_drawn_scenes(nuimages_root):
    dicts = DatasetCatalog.get("nuimages_train")  # registered by importing lv_nuimages
    assert len(dicts) == 6 and len(DatasetCatalog.get("nuimages_val")) == 2
    assert all("/samples/CAM_FRONT/" in d["file_name"] for d in dicts)  # never a sweep
    assert sum(len(d["annotations"]) for d in dicts) > 10
    for index, record in enumerate(dicts):
        scene = draw_scene(np.random.default_rng([0, index]), HEIGHT, WIDTH)
        labeled = [label for label in scene.labels if label["category"] in CATEGORY_OF]
        targets = [t for t in labeled if CLASS_OF_SCENE_CATEGORY[t["category"]] is not None]
        assert [a["bbox"] for a in record["annotations"]] == [
            [x1, y1, x2 + 1, y2 + 1] for x1, y1, x2, y2 in (t["box"] for t in targets)]
        assert [DET_CLASSES[a["category_id"]] for a in record["annotations"]] == [
            CLASS_OF_SCENE_CATEGORY[t["category"]] for t in targets]
        assert record["labeled_tasks"] == ["detection", "semantic"]
        # The semantic mask: road -> driveable surface, each object its class, a wheelchair
        # user (no class) ignored, everything else (traffic lights and signs too) background.
        expected = np.zeros((HEIGHT, WIDTH), np.uint8)
        expected[scene.sem == SEM["road"]] = SEM_CLASSES.index("driveable_surface")
        for label in labeled:
            name = CLASS_OF_SCENE_CATEGORY[label["category"]]
            expected[scene.owner == label["oid"]] = 255 if name is None else SEM_CLASSES.index(name)
        assert np.array_equal(cv2.imread(record["sem_seg_file_name"], -1), expected), index


@pytest.mark.parametrize("table, change, message", [
    ("object_ann", lambda rows: rows[0].update(bbox=[0, 0, 500, 10]),
     r"object_ann.json:\w+: bbox \[0, 0, 500, 10\] is empty or leaves the 128x72 image"),
    ("object_ann", lambda rows: rows[0].update(bbox=[1, 2, 3]), "bbox must be"),
    ("object_ann", lambda rows: rows[0].update(category_token="nope"),
     "category_token 'nope' is not in category.json"),
    ("object_ann", lambda rows: rows[0].pop("sample_data_token"),
     r"object_ann.json:\w+: the row has no 'sample_data_token'"),
    ("category", lambda rows: rows[0].update(name="vehicle.spaceship"),
     r"category.json:\w+: unknown category 'vehicle.spaceship'"),
    ("surface_ann", lambda rows: rows[0].update(mask={"size": [72, 128], "counts": "%%"}),
     None),  # read when the masks are written, not when loading (below)
])
def test_bad_tables_are_refused_naming_the_file_and_row(nuimages_root, tmp_path, table, change,
                                                        message):
    root, folder = copy_set(nuimages_root, tmp_path)
    edit_table(folder, table, change)
    if message is None:
        frames_ = frames(root, "v1.0-train")
        with pytest.raises(BadSampleError, match=r"surface_ann.json:\w+: mask is not"):
            write_semantic_masks(frames_, overwrite=True, progress=False)
        edit_table(folder, table, lambda rows: rows[0].update(mask=None))
        with pytest.raises(BadSampleError, match=r"surface_ann.json:\w+: a surface annotation "
                                                 r"without a mask"):
            write_semantic_masks(frames(root, "v1.0-train"), overwrite=True, progress=False)
        return
    with pytest.raises(BadSampleError, match=message):
        load_nuimages(root, "v1.0-train")


def test_annotations_of_sweeps_malformed_and_missing_tables_and_unprepared_masks(nuimages_root,
                                                                                 tmp_path):
    root, folder = copy_set(nuimages_root, tmp_path)
    sweep = next(r["token"] for r in json.loads((folder / "sample_data.json").read_text())
                 if not r["is_key_frame"])
    edit_table(folder, "object_ann", lambda rows: rows[0].update(sample_data_token=sweep))
    with pytest.raises(BadSampleError, match="is not the key frame of any sample"):
        load_nuimages(root, "v1.0-train")
    (folder / "object_ann.json").write_text('[{"token": "a",')
    with pytest.raises(BadSampleError, match=r"object_ann.json: malformed JSON"):
        load_nuimages(root, "v1.0-train")
    (folder / "object_ann.json").unlink()
    with pytest.raises(BadSampleError, match=r"object_ann.json: nuImages table 'object_ann' is "
                                             r"missing"):
        load_nuimages(root, "v1.0-train")
    with pytest.raises(BadSampleError, match="nuImages version folder not found"):
        load_nuimages(root, "v1.0-test")
    shutil.rmtree(tmp_path / "nuimages" / "semantic_masks" / "v1.0-val")
    with pytest.raises(BadSampleError, match="semantic masks are not prepared: run `python "
                                             "projects/NuImages/tools/prepare_semantic_masks.py"):
        load_nuimages(root, "v1.0-val")


@pytest.mark.same_calls
def test_prepare_tool_writes_the_masks_again_and_keeps_existing_ones(nuimages_root, tmp_path):
    root, _ = copy_set(nuimages_root, tmp_path)
    folder = tmp_path / "nuimages" / "semantic_masks" / "v1.0-val"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    shutil.rmtree(folder)
    tool = os.path.join(PROJECT, "tools", "prepare_semantic_masks.py")
    cmd = [sys.executable, tool, "--root", root, "--version", "v1.0-val"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), check=True)
    assert "v1.0-val: wrote 2 semantic masks" in done.stdout
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    done = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), check=True)
    assert "v1.0-val: wrote 0 semantic masks" in done.stdout


def test_a_head_with_bdd100k_class_counts_is_refused_on_nuimages(nuimages_root):
    with pytest.raises(ValueError, match=r"MODEL.SEMANTIC_HEAD.NUM_CLASSES is 19 but dataset "
                                         r"'nuimages_train' has 13 semantic classes \(background"):
        build_config(TINY, ["MODEL.SEMANTIC_HEAD.NUM_CLASSES", "19"])


def test_prompts_name_the_classes_of_nuimages(nuimages_root):
    cfg = build_config(TINY, ["MODEL.DEVICE", "cpu"])
    assert config_task_classes(cfg, "semantic") == SEM_CLASSES
    prompts = build_task_prompts(cfg, list(cfg.MODEL.TASKS))
    template = cfg.MODEL.ADAPTER.PROMPT.TEMPLATES[0]
    tokenize = prompts.encoder.tokenize
    assert prompts.prompts["detection"].token_ids[0] == [
        tokenize(template.format(name.replace("_", " "))) for name in DET_CLASSES]
    semantic = prompts.prompts["semantic"].token_ids[0]
    assert tokenize(template.format("driveable surface")) in semantic
    assert {task: f.shape[0] for task, f in prompts().items()} == {"detection": 10, "semantic": 13}


@pytest.mark.slow
def test_project_train_net_trains_the_lv_adapter_on_nuimages_classes(nuimages_root, tmp_path):
    cmd = [sys.executable, os.path.join(PROJECT, "train_net.py"), "--config-file", TINY,
           "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True,
                          env=subprocess_env(DETECTRON2_DATASETS=nuimages_root))
    assert done.returncode == 0, done.stderr[-3000:]
    log = (tmp_path / "log.txt").read_text()
    assert "Iteration 2: the adapt stage ends, the finetune stage begins" in log
    results = json.loads((tmp_path / "inference" / "results.json").read_text())
    assert set(results) == {"bbox", "sem_seg"}
    assert {f"AP-{name}" for name in DET_CLASSES} <= set(results["bbox"])
    assert {f"IoU-{name}" for name in SEM_CLASSES} <= set(results["sem_seg"])
    exports = tmp_path / "inference" / "nuimages_val" / "nuimages"
    assert (exports / "det.json").is_file() and len(list((exports / "sem_seg").iterdir())) == 2


def semantic_teacher_miou(root, tmp_path, iterations):
    """Held-out (nuimages_val) semantic mIoU of the tiny semantic-only model after
    ``iterations`` (seed 0), trained through the project's train_net.py."""
    out = tmp_path / str(iterations)
    cmd = [sys.executable, os.path.join(PROJECT, "train_net.py"), "--config-file", MULTITASK,
           "MODEL.TASKS", "('semantic',)", "SOLVER.MAX_ITER", str(iterations),
           "SOLVER.CHECKPOINT_PERIOD", "1000", "OUTPUT_DIR", str(out),
           "MODEL.DEVICE", "cpu"]
    done = subprocess.run(cmd, capture_output=True, text=True,
                          env=subprocess_env(DETECTRON2_DATASETS=root))
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "inference" / "results.json").read_text())["sem_seg"]["mIoU"]


@pytest.mark.slow
@pytest.mark.measurement
def test_a_semantic_model_learns_nuimages_classes_on_held_out_frames(nuimages_root, tmp_path):
    before = semantic_teacher_miou(nuimages_root, tmp_path, 1)
    after = semantic_teacher_miou(nuimages_root, tmp_path, 80)
    assert after > before + 10, (before, after)


def test_every_project_config_merges_and_builds(nuimages_root):
    paths = sorted(glob.glob(os.path.join(PROJECT, "configs", "**", "*.yaml"), recursive=True))
    leaves = [p for p in paths if not os.path.basename(p).startswith("Base-")]
    assert len(leaves) == 10  # table 11's 4 rows at R50 and on the sample, 2 tiny
    for path in leaves:
        cfg = build_config(path, ["MODEL.DEVICE", "cpu"])
        assert set(cfg.MODEL.TASKS) <= {"detection", "semantic"}, path
        assert cfg.DATASETS.TRAIN == ("nuimages_train",) and cfg.DATASETS.TEST == ("nuimages_val",)
        if cfg.MODEL.CLIP.WEIGHTS == "openai":
            continue  # CLIP's weights come from the model hub, which these machines lack
        assert set(build_model(cfg).heads) == set(cfg.MODEL.TASKS), path


def run_tool(root, tool, *argv):
    cmd = [sys.executable, os.path.join(REPO, "tools", tool), *argv]
    return subprocess.run(cmd, capture_output=True, text=True,
                          env=subprocess_env(DETECTRON2_DATASETS=root))


@pytest.mark.same_calls
def test_check_dataset_reads_nuimages_masks_against_nuimages_classes(nuimages_root, tmp_path):
    root, _ = copy_set(nuimages_root, tmp_path)
    done = run_tool(root, "check_dataset.py", "nuimages_val", "--num-workers", "0")
    assert done.returncode == 2 and "not registered: nuimages_val" in done.stderr
    assert "add --project projects/<Name>" in done.stderr
    project = ["--project", PROJECT, "--num-workers", "0"]
    done = run_tool(root, "check_dataset.py", "nuimages_train", "nuimages_val", *project)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no problems found" in done.stdout
    # boxes counted under nuImages' class names (the summary once indexed BDD100K's)
    names = MetadataCatalog.get("nuimages_train").thing_classes
    counts = collections.Counter(names[a["category_id"]] for d in DatasetCatalog.get(
        "nuimages_train") for a in d["annotations"] if not a.get("iscrowd", 0))
    line = next(x for x in done.stdout.splitlines() if x.strip().startswith("boxes:"))
    assert counts and all(f"{name} {n}" in line for name, n in counts.items()), line
    # 13 is a BDD100K semantic class id but not a nuImages one (0..12).
    mask_path = DatasetCatalog.get("nuimages_val")[0]["sem_seg_file_name"].replace(
        nuimages_root, root)
    mask = cv2.imread(mask_path, -1)
    mask[0, 0] = 13
    cv2.imwrite(mask_path, mask)
    done = run_tool(root, "check_dataset.py", "nuimages_val", *project)
    assert done.returncode == 1
    problem = "semantic mask holds values [13] outside the valid ids 0..12"
    assert f"{mask_path}: {problem}" in done.stdout


@pytest.mark.same_calls
def test_predictions_are_drawn_with_nuimages_class_names(nuimages_root, tmp_path, monkeypatch):
    weights = tmp_path / "random.pth"  # an untrained tiny model: the drawing is what is tested
    torch.save({"model": build_model(build_config(MULTITASK, ["MODEL.DEVICE", "cpu"]))
                .state_dict()}, weights)
    val = DatasetCatalog.get("nuimages_val")[0]["file_name"]
    argv = ["--config-file", MULTITASK, "--input", val, "--output", str(tmp_path / "drawn"),
            "--confidence-threshold", "0", "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", str(weights)]
    done = run_tool(nuimages_root, "visualize_predictions.py", *argv)
    assert done.returncode != 0 and "'nuimages_train' is not registered" in done.stderr
    done = run_tool(nuimages_root, "visualize_predictions.py", "--project", PROJECT, *argv)
    assert done.returncode == 0, done.stderr[-2000:]
    drawing = cv2.imread(str(tmp_path / "drawn" / (os.path.basename(val)[:-4] + ".png")))
    assert drawing.shape == (HEIGHT, 2 * WIDTH, 3)
    # In this process (the datasets registered): the Visualizer gets nuImages' class names.
    sys.path.insert(0, os.path.join(REPO, "tools"))
    import visualize_predictions

    seen = []
    real = visualize_predictions.draw_multitask
    monkeypatch.setattr(visualize_predictions, "draw_multitask",
                        lambda image, metadata, **kw: seen.append(metadata) or real(
                            image, metadata, **kw))
    assert visualize_predictions.main(visualize_predictions.parse_args(argv)) == 0
    assert seen[0].thing_classes == list(DET_CLASSES)
    assert seen[0].stuff_classes == list(SEM_CLASSES)


@pytest.mark.same_calls
def test_text_features_of_a_nuimages_model_are_dumped_with_its_classes(nuimages_root, tmp_path):
    cfg = build_config(TINY, ["MODEL.DEVICE", "cpu"])
    weights = tmp_path / "lv.pth"
    torch.save({"model": build_model(cfg).state_dict()}, weights)
    out = tmp_path / "text.pth"
    done = run_tool(nuimages_root, "dump_text_features.py", "--project", PROJECT,
                    "--config-file", TINY, "--output", str(out), "MODEL.WEIGHTS", str(weights),
                    "MODEL.DEVICE", "cpu")
    assert done.returncode == 0, done.stderr[-2000:]
    data = torch.load(out, weights_only=True)
    assert data["class_counts"] == {"detection": 10, "semantic": 13}


def test_an_object_without_a_mask_makes_its_box_ignored(nuimages_root, tmp_path):
    root, folder = copy_set(nuimages_root, tmp_path)
    objects = json.loads((folder / "object_ann.json").read_text())
    edit_table(folder, "object_ann", lambda rows: rows[0].update(mask=None))
    frame = next(f for f in frames(root, "v1.0-train")
                 if f["token"] == objects[0]["sample_data_token"])
    write_semantic_masks([frame], overwrite=True, progress=False)
    x1, y1, x2, y2 = objects[0]["bbox"]
    box = np.zeros((HEIGHT, WIDTH), bool)
    box[y1:y2, x1:x2] = True
    # Objects later in the table are painted over it from their own masks (known pixels).
    later = np.zeros_like(box)
    for ann in frame["objects"][1:]:
        later |= decode_mask(ann["mask"], HEIGHT, WIDTH, ann["where"])
    labels = cv2.imread(frame["sem_seg_file_name"], -1)
    assert (box & ~later).sum() > 0 and (labels[box & ~later] == 255).all()
    assert (labels != 255).sum() > 0.5 * labels.size  # the rest keeps its classes
