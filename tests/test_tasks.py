"""The task registry: the three tasks as registrations, one clear error for an unknown task, and a
task registered from outside the core getting its config keys, head and model hooks."""
import contextlib
import os

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model

import train_net
from conftest import REPO, freed_dataset_names
from lv_adapter.config import build_config
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.mapper import MultiTaskDatasetMapper
from lv_adapter.evaluation import build_multitask_evaluator, metric_lines
from lv_adapter.tasks import (
    BUILTIN_TASKS,
    TASK_REGISTRY,
    MaskTask,
    get_task,
    mask_task_names,
    register_task,
    task_names,
)
from lv_adapter.utils.io import write_image

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


class ToyTask(MaskTask):
    """A mask task the core does not know: two classes, its own head node and input key."""

    name = "toy"
    classes = ("paint", "kerb")
    colors = ((255, 255, 255), (128, 128, 0))
    class_metadata_key = "toy_classes"
    color_metadata_key = "toy_colors"
    label_keys = ("toy_file_name",)
    label_source_key = "toy_root"
    input_key = "toy_seg"
    output_key = "toy_seg"
    head_node = "TOY_HEAD"
    threshold_key = "TOY_THRESH"
    export_name = "toy"
    short_name = "toy"
    headline_metrics = ("mIoU",)


@contextlib.contextmanager
def registered(task):
    """``task`` registered for the duration of the block (tests must not leak registrations)."""
    register_task(task)
    try:
        yield task
    finally:
        TASK_REGISTRY._obj_map.pop(task.name)


def test_the_three_tasks_register_in_canonical_order():
    assert task_names() == BUILTIN_TASKS == ("detection", "semantic", "drivable")
    assert mask_task_names() == ("semantic", "drivable")
    assert [get_task(t).input_key for t in task_names()] == ["instances", "sem_seg", "drivable_seg"]
    assert [get_task(t).head_node for t in task_names()] == [
        "SPARSE_RCNN", "SEMANTIC_HEAD", "DRIVABLE_HEAD"]


def test_a_task_registers_once():
    with pytest.raises(AssertionError, match="'semantic' was already registered"):
        register_task(get_task("semantic"))


def test_an_unknown_task_names_the_registered_ones():
    with pytest.raises(ValueError, match=r"MODEL.TASKS: unknown task 'lane'; registered tasks: "
                                         r"detection, semantic, drivable \(a project registers"):
        get_task("lane", key="MODEL.TASKS")


def test_train_net_refuses_an_unregistered_task_before_building_anything(tmp_path):
    argv = ["--config-file", TINY, "MODEL.TASKS", "['detection', 'lane']",
            "OUTPUT_DIR", str(tmp_path)]
    with pytest.raises(ValueError, match=r"MODEL.TASKS has unknown tasks \['lane'\]; registered "
                                         r"tasks: detection, semantic, drivable \(a project's"):
        train_net.main(train_net.default_argument_parser().parse_args(argv))
    assert not os.listdir(tmp_path)


def test_a_registered_task_gets_its_config_keys_from_the_registration():
    with registered(ToyTask()):
        cfg = build_config(TINY, ["MODEL.TASKS", "['semantic', 'toy']"])
        assert cfg.MODEL.HEADS.TOY == "MaskFormerHead"
        assert cfg.MODEL.TASK_WEIGHTS.TOY == 1.0 and cfg.DATALOADER.TASK_REPEAT_FACTORS.TOY == 1.0
        assert cfg.MODEL.TOY_HEAD.NUM_CLASSES == 2 and cfg.PSEUDO_LABELS.TOY_THRESH == 0.5
        assert cfg.MODEL.TASKS == ["semantic", "toy"]
    assert "TOY" not in build_config(TINY).MODEL.HEADS  # gone with its registration
    assert build_config(TINY).MODEL.TASKS == list(BUILTIN_TASKS)


def test_a_registered_mask_task_trains_and_predicts_through_the_model():
    with registered(ToyTask()):
        cfg = build_config(TINY, ["MODEL.TASKS", "['detection', 'toy']", "MODEL.DEVICE", "cpu"])
        model = build_model(cfg)
        assert type(model.heads["toy"]).__name__ == "MaskFormerHead"
        toy = torch.full((32, 48), 255, dtype=torch.long)
        toy[20:, :] = 1
        toy[:20, 10:30] = 0
        batch = [{
            "image": torch.randint(0, 255, (3, 32, 48), dtype=torch.uint8),
            "labeled_tasks": ("toy",),
            "instances": get_task("detection").map_label(None, {}, None, (32, 48)),
            "toy_seg": toy,
        }]
        losses = model(batch)
        assert {k.split("_")[1] for k in losses} == {"detection", "toy"}
        assert all(v == 0 for k, v in losses.items() if k.startswith("loss_detection"))
        toy_losses = [v for k, v in losses.items() if k.startswith("loss_toy")]
        assert all(torch.isfinite(v) for v in toy_losses) and sum(toy_losses) > 0
        sum(losses.values()).backward()
        model.eval()
        with torch.no_grad():
            (out,) = model([{"image": batch[0]["image"], "height": 64, "width": 96}])
        assert out["toy_seg"].shape == (2, 64, 96) and out["instances"].image_size == (64, 96)


def toy_records(root, masks):
    """One 8x12 image per mask, labeled for the toy task only."""
    records = []
    for i, mask in enumerate(masks):
        image, label = root / f"img{i}.jpg", root / f"img{i}_toy.png"
        write_image(str(image), np.full((8, 12, 3), 40 * i, np.uint8))
        write_image(str(label), mask)
        records.append({"file_name": str(image), "image_id": f"img{i}", "height": 8, "width": 12,
                        "labeled_tasks": ["toy"], "toy_file_name": str(label)})
    return records


def test_a_registered_mask_task_is_mapped_checked_and_evaluated(tmp_path):
    mask = np.full((8, 12), 255, np.uint8)
    mask[4:] = 1
    mask[:4, 2:6] = 0
    records = toy_records(tmp_path, [mask, np.ones((8, 12), np.uint8)])
    with registered(ToyTask()), freed_dataset_names(["toy_val"]):
        mapper = MultiTaskDatasetMapper(is_train=True, augmentations=[], tasks=["toy"],
                                        num_classes={"toy": 2})
        out = mapper(records[0])
        assert out["toy_seg"].dtype == torch.int64 and (out["toy_seg"].numpy() == mask).all()
        assert "instances" not in out and out["labeled_tasks"] == ("toy",)
        (tmp_path / "bad").mkdir()
        (bad,) = toy_records(tmp_path / "bad", [np.full((8, 12), 7, np.uint8)])
        with pytest.raises(BadSampleError, match=r"img0_toy\.png: toy mask holds values \[7\]"):
            mapper(bad)

        DatasetCatalog.register("toy_val", lambda: records)
        MetadataCatalog.get("toy_val").set(tasks=["toy"], toy_classes=["paint", "kerb"])
        evaluator = build_multitask_evaluator(["semantic", "toy"], "toy_val")
        evaluator.reset()
        perfect = [np.where(mask == 255, 0, mask), np.ones((8, 12), np.uint8)]
        for record, ids in zip(records, perfect):
            scores = torch.nn.functional.one_hot(torch.as_tensor(ids).long(), 2).permute(2, 0, 1)
            evaluator.process([record], [{"toy_seg": scores.float()}])
        results = evaluator.evaluate()
        assert set(results) == {"toy_seg"} and results["toy_seg"]["mIoU"] == pytest.approx(100)
        assert results["toy_seg"]["IoU-kerb"] == pytest.approx(100)
        assert metric_lines(results) == ["toy mIoU 100.0"]


def test_each_task_says_when_its_pseudo_labels_would_teach_little():
    """engine/pseudo_summary.weak_label_warnings asks the task's registration: masks mostly
    left at 255, or detection frames mostly without a box."""
    from lv_adapter.engine.pseudo_summary import weak_label_warnings

    masks = {"task": "semantic", "images": 4, "ignored_share": 0.7,
             "threshold": {"PSEUDO_LABELS.SEM_SEG_SCORE_THRESH": 0.9}}
    assert weak_label_warnings(masks) == [
        "70% of the semantic pixels are left at 255 (below PSEUDO_LABELS.SEM_SEG_SCORE_THRESH): "
        "the pseudo masks label little; train the teacher longer or lower "
        "PSEUDO_LABELS.SEM_SEG_SCORE_THRESH"]
    assert weak_label_warnings({**masks, "ignored_share": 0.3}) == []
    boxes = {"task": "detection", "images": 4, "images_without_boxes": 1, "threshold": {}}
    assert weak_label_warnings(boxes) == []
    assert weak_label_warnings({**boxes, "images_without_boxes": 3})[0].startswith(
        "3 of 4 images got no detection box at or above the threshold")
