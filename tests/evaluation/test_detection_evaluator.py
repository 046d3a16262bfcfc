"""DetectionEvaluator: COCO box AP with BDD100K ignore regions, only on detection-labeled images."""
import json
import math
import os
import uuid

import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances

import lv_adapter  # noqa: F401  (installs the detectron2._C placeholder first)
from lv_adapter.evaluation import DetectionEvaluator
from lv_adapter.tasks import DETECTION, SEMANTIC
from lv_adapter.tasks.detection import DET_CLASSES

HEIGHT, WIDTH = 400, 600
CAR, PEDESTRIAN, TRAFFIC_SIGN = 2, 0, 9


def _record(image_id, boxes=(), tasks=(DETECTION,)):
    """A dataset dict; ``boxes`` are (continuous XYXY, category_id, iscrowd)."""
    record = {
        "file_name": f"/nowhere/{image_id}.jpg",
        "image_id": image_id,
        "height": HEIGHT,
        "width": WIDTH,
        "labeled_tasks": list(tasks),
    }
    if DETECTION in tasks:
        record["annotations"] = [
            {"bbox": list(box), "bbox_mode": BoxMode.XYXY_ABS, "category_id": c, "iscrowd": crowd}
            for box, c, crowd in boxes
        ]
    return record


def _register(records):
    name = f"test_det_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: records)
    MetadataCatalog.get(name).set(tasks=[DETECTION, SEMANTIC], thing_classes=list(DET_CLASSES))
    return name


def _instances(detections):
    """Instances of (continuous XYXY box, class, score) triples."""
    instances = Instances((HEIGHT, WIDTH))
    boxes = [list(box) for box, _, _ in detections]
    instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    instances.pred_classes = torch.tensor([c for _, c, _ in detections], dtype=torch.int64)
    instances.scores = torch.tensor([s for _, _, s in detections], dtype=torch.float32)
    return instances


def _evaluate(records, detections, output_dir=None):
    """Box results of ``detections`` ({image_id: triples}) on every image of ``records``."""
    evaluator = DetectionEvaluator(_register(records), output_dir)
    evaluator.reset()
    # Model inputs carry no labels (the test-time mapper drops them): the evaluator looks them up.
    keep = ("file_name", "image_id", "height", "width", "labeled_tasks")
    inputs = [{k: r[k] for k in keep} for r in records]
    outputs = [{"instances": _instances(detections.get(r["image_id"], []))} for r in records]
    evaluator.process(inputs, outputs)
    return evaluator.evaluate()["bbox"]


# Boxes of three classes, small (< 32^2), medium and large, over two images.
SMALL, MEDIUM, LARGE = [10, 10, 30, 30], [100, 100, 150, 150], [300, 100, 500, 300]
GT_BOXES = {
    "a": [(SMALL, TRAFFIC_SIGN, 0), (MEDIUM, PEDESTRIAN, 0), (LARGE, CAR, 0)],
    "b": [(MEDIUM, CAR, 0), ([200.5, 20.25, 260.75, 90.5], CAR, 0)],
}


def _perfect(gt_boxes):
    return {
        image_id: [(box, c, 0.9) for box, c, crowd in boxes if not crowd]
        for image_id, boxes in gt_boxes.items()
    }


def test_perfect_predictions_score_100():
    records = [_record(image_id, boxes) for image_id, boxes in GT_BOXES.items()]
    results = _evaluate(records, _perfect(GT_BOXES))
    for metric in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AP-car", "AP-traffic sign"):
        assert results[metric] == pytest.approx(100.0), metric
    # No bus in the ground truth: its AP is undefined, as in detectron2's COCOEvaluator.
    assert math.isnan(results["AP-bus"])
    assert set(results) == {"AP", "AP50", "AP75", "APs", "APm", "APl"} | {
        f"AP-{name}" for name in DET_CLASSES
    }


def test_box_shifted_off_the_continuous_edges_loses_the_strict_thresholds():
    # GT [0, 0, 10, 10] vs prediction [0, 0, 10, 11]: IoU = 100 / 110 = 0.909, a match at the
    # IoU thresholds 0.50..0.90 (9 of 10) but not at 0.95 -> AP = 90, AP75 = 100.
    records = [_record("a", [([0, 0, 10, 10], CAR, 0)])]
    results = _evaluate(records, {"a": [([0, 0, 10, 11], CAR, 0.9)]})
    assert results["AP"] == pytest.approx(90.0)
    assert results["AP75"] == pytest.approx(100.0)


CROWD_GT = {"a": [([10, 10, 60, 60], CAR, 0), ([200, 200, 300, 300], CAR, 1)]}
TRUE_CAR = ([10, 10, 60, 60], CAR, 0.8)


@pytest.mark.parametrize(
    "extra, expected_ap",
    [
        (None, 100.0),
        # Inside the crowd region: ignored, neither TP nor FP.
        (([210, 210, 260, 260], CAR, 0.9), 100.0),
        # The same box elsewhere is a false positive ranked above the true positive: precision
        # is 1/2 at every recall level, so AP = 50.
        (([400, 50, 450, 100], CAR, 0.9), 50.0),
    ],
)
def test_detections_in_crowd_regions_are_not_false_positives(extra, expected_ap):
    detections = [TRUE_CAR] + ([extra] if extra else [])
    results = _evaluate([_record("a", CROWD_GT["a"])], {"a": detections})
    assert results["AP"] == pytest.approx(expected_ap)


@pytest.mark.parametrize("b_tasks, expected_ap", [((SEMANTIC,), 100.0), ((DETECTION,), 50.0)])
def test_images_not_labeled_for_detection_create_no_false_positives(b_tasks, expected_ap):
    # Image b has no boxes. Labeled for detection, the car predicted there (ranked first) is a
    # false positive (AP 50, see above); labeled only for semantic, b is not evaluated at all.
    records = [_record("a", [([10, 10, 60, 60], CAR, 0)]), _record("b", tasks=b_tasks)]
    detections = {"a": [TRUE_CAR], "b": [([10, 10, 60, 60], CAR, 0.9)]}
    assert _evaluate(records, detections)["AP"] == pytest.approx(expected_ap)


def test_no_detections_give_zero_ap():
    results = _evaluate([_record("a", GT_BOXES["a"])], {})
    assert results["AP"] == 0.0 and results["AP-car"] == 0.0


def test_det_json_export(tmp_path):
    records = [
        _record("a", [([10, 10, 60, 60], CAR, 0)]),
        _record("b", []),  # labeled, no boxes, no detections: still one frame
        _record("c", tasks=(SEMANTIC,)),  # not labeled for detection: no frame
    ]
    detections = {"a": [([10.5, 10, 60, 61.25], CAR, 0.75), ([0, 0, 5, 5], PEDESTRIAN, 0.5)]}
    _evaluate(records, detections, output_dir=str(tmp_path))
    with open(os.path.join(tmp_path, "bdd100k", "det.json")) as f:
        frames = json.load(f)
    assert [frame["name"] for frame in frames] == ["a.jpg", "b.jpg"]
    assert frames[1]["labels"] == []
    car, pedestrian = frames[0]["labels"]
    assert car["category"] == "car" and pedestrian["category"] == "pedestrian"
    assert car["score"] == pytest.approx(0.75)
    # Inclusive pixel convention: x2/y2 are the continuous edges minus one.
    assert car["box2d"] == pytest.approx({"x1": 10.5, "y1": 10, "x2": 59, "y2": 60.25})
    assert {car["id"], pedestrian["id"]} == {"0", "1"}


def test_output_without_instances_is_an_error():
    evaluator = DetectionEvaluator(_register([_record("a", [])]))
    evaluator.reset()
    with pytest.raises(KeyError, match="'a' has no 'instances'"):
        evaluator.process([{"file_name": "/nowhere/a.jpg", "image_id": "a"}], [{}])


def test_unknown_image_is_an_error():
    name = _register([_record("a", [])])
    evaluator = DetectionEvaluator(name)
    evaluator.reset()
    with pytest.raises(KeyError, match=f"'zz' is not in dataset '{name}'"):
        evaluator.process([{"file_name": "/nowhere/zz.jpg", "image_id": "zz"}], [{}])
