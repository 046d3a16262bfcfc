"""SegmentationEvaluator: confusion-matrix metrics of semantic and drivable segmentation."""
import math
import os
import uuid

import cv2
import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog

import lv_adapter  # noqa: F401  (installs the detectron2._C placeholder first)
from lv_adapter.data.errors import BadSampleError
from lv_adapter.evaluation import SegmentationEvaluator
from lv_adapter.tasks import DETECTION, DRIVABLE, SEMANTIC
from lv_adapter.tasks.drivable import DRIVABLE_CLASSES
from lv_adapter.tasks.semantic import SEM_SEG_CLASSES
from lv_adapter.utils.io import write_image

ROAD, SIDEWALK, CAR = 0, 1, 13
DIRECT, ALTERNATIVE, BACKGROUND = 0, 1, 2
FILE_KEYS = {SEMANTIC: "sem_seg_file_name", DRIVABLE: "drivable_file_name"}
NUM_CLASSES = {SEMANTIC: len(SEM_SEG_CLASSES), DRIVABLE: len(DRIVABLE_CLASSES)}
RESULT_KEYS = {SEMANTIC: "sem_seg", DRIVABLE: "drivable_seg"}


def _record(folder, image_id, masks, legacy=False):
    """A dataset dict labeled for the tasks of ``masks`` ({task: HxW ids}), written as PNGs."""
    shape = np.shape(next(iter(masks.values())))
    record = {
        "file_name": f"/nowhere/{image_id}.jpg",
        "image_id": image_id,
        "height": shape[0],
        "width": shape[1],
        "labeled_tasks": [task for task in (SEMANTIC, DRIVABLE) if task in masks],
    }
    for task, mask in masks.items():
        path = os.path.join(folder, f"{task}_{image_id}.png")
        write_image(path, np.asarray(mask, dtype=np.uint8))
        record[FILE_KEYS[task]] = path
    if legacy:
        record["drivable_legacy"] = True
    return record


def _scores(labels, num_classes):
    """A [K, H, W] score map whose argmax is ``labels``."""
    one_hot = torch.nn.functional.one_hot(torch.as_tensor(np.asarray(labels)).long(), num_classes)
    return one_hot.permute(2, 0, 1).float()


def _evaluate(task, records, predictions, output_dir=None):
    """Results of ``task`` for ``predictions`` ({image_id: HxW ids}) on all ``records``."""
    name = f"test_seg_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(tasks=[SEMANTIC, DRIVABLE])
    evaluator = SegmentationEvaluator(name, task, output_dir)
    evaluator.reset()
    keep = ("file_name", "image_id", "height", "width", "labeled_tasks")
    inputs = [{k: r[k] for k in keep} for r in records]
    key, num_classes = RESULT_KEYS[task], NUM_CLASSES[task]
    outputs = [{key: _scores(predictions[r["image_id"]], num_classes)} for r in records]
    evaluator.process(inputs, outputs)
    return evaluator.evaluate()[key]


def test_perfect_predictions_score_100(tmp_path):
    gt = np.array([[ROAD, ROAD, SIDEWALK], [CAR, CAR, 255]])
    prediction = np.where(gt == 255, SIDEWALK, gt)  # wrong only where the label is ignored
    results = _evaluate(SEMANTIC, [_record(tmp_path, "a", {SEMANTIC: gt})], {"a": prediction})
    for metric in ("mIoU", "pACC", "mACC", "IoU-road", "IoU-sidewalk", "IoU-car"):
        assert results[metric] == pytest.approx(100.0), metric
    assert math.isnan(results["IoU-sky"])  # absent from the ground truth
    assert len([k for k in results if k.startswith("IoU-")]) == len(SEM_SEG_CLASSES)


def test_known_confusion(tmp_path):
    # GT [[road, road], [sidewalk, sidewalk]], prediction [[road, sidewalk], [sidewalk,
    # sidewalk]]: one road pixel predicted as sidewalk.
    # road: TP 1, GT 2, P 1 -> IoU 1 / (2 + 1 - 1) = 1/2; sidewalk: TP 2, GT 2, P 3 -> 2/3.
    # mIoU over the 2 present classes = (1/2 + 2/3) / 2 = 58.33%; pACC = 3/4; mACC = (1/2 + 1)/2.
    gt = [[ROAD, ROAD], [SIDEWALK, SIDEWALK]]
    prediction = [[ROAD, SIDEWALK], [SIDEWALK, SIDEWALK]]
    results = _evaluate(SEMANTIC, [_record(tmp_path, "a", {SEMANTIC: gt})], {"a": prediction})
    assert results["IoU-road"] == pytest.approx(50.0)
    assert results["IoU-sidewalk"] == pytest.approx(200 / 3)
    assert results["mIoU"] == pytest.approx(175 / 3)
    assert results["pACC"] == pytest.approx(75.0)
    assert results["mACC"] == pytest.approx(75.0)


def test_images_not_labeled_for_the_task_are_skipped(tmp_path):
    # b is labeled for drivable only: its (all wrong) semantic prediction must not count.
    records = [
        _record(tmp_path, "a", {SEMANTIC: [[ROAD, CAR]]}),
        _record(tmp_path, "b", {DRIVABLE: [[DIRECT, DIRECT]]}),
    ]
    predictions = {"a": [[ROAD, CAR]], "b": [[SIDEWALK, SIDEWALK]]}
    results = _evaluate(SEMANTIC, records, predictions)
    assert results["mIoU"] == pytest.approx(100.0)
    assert math.isnan(results["IoU-sidewalk"])


@pytest.mark.parametrize(
    "gt, prediction, miou, official",
    [
        # Background GT pixel predicted as direct: direct TP 1, GT 1, P 2 -> 1/2;
        # alternative 1/1; background TP 1, GT 2, P 1 -> 1/2; 3-class mIoU = 2/3.
        # Official: only the direct/alternative GT pixels count, both right -> 100.
        ([[DIRECT, ALTERNATIVE], [BACKGROUND, BACKGROUND]],
         [[DIRECT, ALTERNATIVE], [DIRECT, BACKGROUND]], 200 / 3, 100.0),
        # Direct GT pixel predicted as background: 3-class direct 1/2, alternative 1,
        # background TP 1, GT 1, P 2 -> 1/2: mIoU 2/3. Official: direct TP 1, GT 2, P 1 -> 1/2,
        # alternative 1 -> 75.
        ([[DIRECT, DIRECT], [ALTERNATIVE, BACKGROUND]],
         [[DIRECT, BACKGROUND], [ALTERNATIVE, BACKGROUND]], 200 / 3, 75.0),
    ],
)
def test_official_drivable_miou(tmp_path, gt, prediction, miou, official):
    results = _evaluate(DRIVABLE, [_record(tmp_path, "a", {DRIVABLE: gt})], {"a": prediction})
    assert results["mIoU"] == pytest.approx(miou)
    assert results["mIoU_bdd100k"] == pytest.approx(official)


def test_semantic_has_no_official_drivable_metric(tmp_path):
    results = _evaluate(SEMANTIC, [_record(tmp_path, "a", {SEMANTIC: [[ROAD]]})], {"a": [[ROAD]]})
    assert "mIoU_bdd100k" not in results


def test_legacy_drivable_masks_are_remapped_for_drivable_only(tmp_path):
    # 2018 encoding 0 background, 1 direct, 2 alternative; the semantic mask of the same image
    # must be read as is.
    legacy = [[1, 2], [0, 0]]
    records = [_record(tmp_path, "a", {SEMANTIC: legacy, DRIVABLE: legacy}, legacy=True)]
    drivable = [[DIRECT, ALTERNATIVE], [BACKGROUND, BACKGROUND]]
    assert _evaluate(DRIVABLE, records, {"a": drivable})["mIoU"] == pytest.approx(100.0)
    assert _evaluate(SEMANTIC, records, {"a": legacy})["mIoU"] == pytest.approx(100.0)


def test_png_export_holds_the_argmax(tmp_path):
    rng = np.random.default_rng(0)
    predictions = {"a": rng.integers(0, 19, (3, 4)), "b": rng.integers(0, 19, (3, 4))}
    records = [_record(tmp_path, k, {SEMANTIC: rng.integers(0, 19, (3, 4))}) for k in "ab"]
    out = tmp_path / "out"
    _evaluate(SEMANTIC, records, predictions, output_dir=str(out))
    folder = out / "bdd100k" / "sem_seg"
    assert sorted(os.listdir(folder)) == ["a.png", "b.png"]
    for image_id, prediction in predictions.items():
        written = cv2.imread(str(folder / f"{image_id}.png"), cv2.IMREAD_UNCHANGED)
        assert written.dtype == np.uint8
        np.testing.assert_array_equal(written, prediction)


def test_drivable_png_export_folder(tmp_path):
    records = [_record(tmp_path, "a", {DRIVABLE: [[DIRECT, BACKGROUND]]})]
    _evaluate(DRIVABLE, records, {"a": [[ALTERNATIVE, BACKGROUND]]}, output_dir=str(tmp_path))
    written = cv2.imread(str(tmp_path / "bdd100k" / "drivable" / "a.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, [[ALTERNATIVE, BACKGROUND]])


def test_prediction_of_another_size_is_an_error(tmp_path):
    records = [_record(tmp_path, "img7", {SEMANTIC: np.zeros((2, 2))})]
    with pytest.raises(ValueError, match=r"'img7'.*3x3 \(WxH\).*ground truth is 2x2"):
        _evaluate(SEMANTIC, records, {"img7": np.zeros((3, 3))})


def test_wrong_number_of_classes_is_an_error(tmp_path):
    records = [_record(tmp_path, "a", {DRIVABLE: np.zeros((2, 2))})]
    name = f"test_seg_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: records)
    evaluator = SegmentationEvaluator(name, DRIVABLE)
    evaluator.reset()
    with pytest.raises(ValueError, match=r"'drivable_seg' scores of shape \[3, H, W\]"):
        evaluator.process(records, [{"drivable_seg": torch.zeros(19, 2, 2)}])


def test_bad_ground_truth_file_names_the_file(tmp_path):
    records = [_record(tmp_path, "a", {SEMANTIC: np.zeros((2, 2))})]
    records[0]["sem_seg_file_name"] = str(tmp_path / "missing.png")
    with pytest.raises(BadSampleError, match="missing.png: label mask file is missing"):
        _evaluate(SEMANTIC, records, {"a": np.zeros((2, 2))})


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="no segmentation task 'detection'"):
        SegmentationEvaluator("any", DETECTION)
