"""The multi-task meta-architecture on generated sample scenes, with the tiny test config."""
import os

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model

from lv_adapter import build_config
from lv_adapter.data import MultiTaskDatasetMapper

from conftest import REPO

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


def tiny_cfg(**overrides):
    opts = [x for kv in overrides.items() for x in kv]
    return build_config(TINY, opts)


@pytest.fixture(scope="module")
def batch(sample_root):
    """Four mapped train images that together carry every task (fixed, no flip)."""
    cfg = tiny_cfg()
    cfg.INPUT.RANDOM_FLIP = "none"
    mapper = MultiTaskDatasetMapper(cfg, is_train=True)
    dicts = DatasetCatalog.get("bdd100k_multitask_train")
    full = [d for d in dicts if len(d["labeled_tasks"]) == 3][:2]
    det = [d for d in dicts if d["labeled_tasks"] == ["detection", "drivable"]][:1]
    sem = [d for d in dicts if d["labeled_tasks"] == ["semantic"]][:1]
    return [mapper(d) for d in full + det + sem]


def test_training_losses_are_named_weighted_and_finite(batch):
    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    losses = model(batch)
    assert all(torch.isfinite(v) for v in losses.values())
    for task in ("detection", "semantic", "drivable"):
        assert any(k.startswith(f"loss_{task}_") for k in losses), task
    assert "loss_detection_giou" in losses and "loss_detection_giou_0" in losses  # deep supervision
    torch.manual_seed(0)
    double = build_model(tiny_cfg(**{"MODEL.TASK_WEIGHTS.SEMANTIC": 2.0}))
    doubled = double(batch)
    dice, giou = losses["loss_semantic_dice"].item(), losses["loss_detection_giou"].item()
    assert doubled["loss_semantic_dice"].item() == pytest.approx(2 * dice, rel=1e-4)
    assert doubled["loss_detection_giou"].item() == pytest.approx(giou, rel=1e-4)


def test_unlabeled_task_gives_zero_loss_and_valid_gradients(batch):
    only_semantic = [x for x in batch if x["labeled_tasks"] == ("semantic",)]
    model = build_model(tiny_cfg())
    losses = model(only_semantic)
    detection = {k: v for k, v in losses.items() if k.startswith("loss_detection")}
    assert detection and all(v.item() == 0.0 for v in detection.values())
    assert set(detection) == {k for k in model(batch) if k.startswith("loss_detection")}
    sum(losses.values()).backward()
    head = model.heads["detection"]
    assert all(p.grad is not None and (p.grad == 0).all() for p in head.parameters())
    assert any(p.grad.abs().sum() > 0 for p in model.heads["semantic"].parameters())


def test_images_without_boxes_train(batch):
    empty = [dict(x) for x in batch[:2]]
    for x in empty:
        x["instances"] = x["instances"][:0]
    losses = build_model(tiny_cfg())(empty)
    assert all(torch.isfinite(v) for v in losses.values())


@pytest.mark.measurement
def test_training_steps_lower_the_loss(batch):
    torch.manual_seed(0)
    model = build_model(tiny_cfg())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(25):
        loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert all(map(lambda t: t == t, totals))
    assert sum(totals[-3:]) / 3 < 0.7 * sum(totals[:3]) / 3, totals


def test_inference_outputs_at_original_resolution(sample_root):
    cfg = tiny_cfg()
    model = build_model(cfg).eval()
    mapper = MultiTaskDatasetMapper(cfg, is_train=False)
    dicts = DatasetCatalog.get("bdd100k_multitask_val")[:2]
    inputs = [mapper(d) for d in dicts]
    inputs[1]["height"], inputs[1]["width"] = 50, 90  # any original size is honoured
    with torch.no_grad():
        outputs = model(inputs)
    for out, x in zip(outputs, inputs):
        h, w = x["height"], x["width"]
        assert out["sem_seg"].shape == (19, h, w)
        assert out["drivable_seg"].shape == (3, h, w)
        instances = out["instances"]
        assert instances.image_size == (h, w)
        # Top-k of proposals x classes; detector_postprocess drops boxes empty after clipping.
        assert 0 < len(instances) <= cfg.MODEL.SPARSE_RCNN.TEST_TOPK
        assert {"pred_boxes", "scores", "pred_classes"} <= set(instances.get_fields())
        boxes = instances.pred_boxes.tensor
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all()


def test_single_task_model_is_a_teacher(sample_root):
    model = build_model(tiny_cfg(**{"MODEL.TASKS": ["drivable"]})).eval()
    assert list(model.heads) == ["drivable"]
    image = torch.zeros(3, 72, 128, dtype=torch.uint8)
    with torch.no_grad():
        (out,) = model([{"image": image}])
    assert set(out) == {"drivable_seg"} and out["drivable_seg"].shape == (3, 72, 128)


def test_nan_loss_names_the_term(batch):
    model = build_model(tiny_cfg())
    with torch.no_grad():
        model.heads["drivable"].parameters().__next__().fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss_drivable_"):
        model(batch)


def test_heads_are_chosen_per_task_by_name():
    model = build_model(tiny_cfg())
    assert {t: type(h).__name__ for t, h in model.heads.items()} == {
        "detection": "SparseRCNNHead", "semantic": "MaskFormerHead", "drivable": "MaskFormerHead"}
    with pytest.raises(ValueError, match=r"MODEL.HEADS.SEMANTIC is 'NoSuchHead', which no "
                                         r"imported module registers; registered: "
                                         r"\[.*'MaskFormerHead', .*'SparseRCNNHead'"):
        build_model(tiny_cfg(**{"MODEL.HEADS.SEMANTIC": "NoSuchHead"}))
    with pytest.raises(ValueError, match=r"MODEL.HEADS.DRIVABLE is 'SparseRCNNHead', a head for "
                                         r"\['detection'\], not for drivable"):
        build_model(tiny_cfg(**{"MODEL.HEADS.DRIVABLE": "SparseRCNNHead"}))
