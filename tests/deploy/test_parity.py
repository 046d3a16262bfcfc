"""How exported and eager detections are compared (lv_adapter.deploy.parity): matching, and the
detections on an edge of COCOeval whose float32 differences move box AP."""
import logging
import os
import sys

import pytest
import torch
from detectron2.structures import Boxes, BoxMode, Instances

from conftest import REPO
from lv_adapter.deploy.parity import compare_outputs, edge_cases, match_detections, \
    take_from_eager
from lv_adapter.evaluation.detection import coco_box_metrics, ground_truth_boxes, \
    predicted_boxes

CLASSES = ["car", "bus"]


def instances(boxes, scores, classes):
    result = Instances((100, 100))
    result.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32))
    result.scores = torch.tensor(scores, dtype=torch.float32)
    result.pred_classes = torch.tensor(classes)
    return result


def record(image_id, *boxes):
    """A dataset dict with ``(category_id, [x1, y1, x2, y2])`` ground-truth boxes."""
    return {"image_id": image_id, "file_name": f"{image_id}.jpg", "height": 100, "width": 100,
            "annotations": [{"bbox": box, "bbox_mode": BoxMode.XYXY_ABS, "category_id": c}
                            for c, box in boxes]}


def box_ap50(images, which):
    """AP50 of the eager (0) or exported (1) Instances of ``images`` (records, a, b)."""
    coco = [{**r, "gt": ground_truth_boxes(r), "dets": predicted_boxes(x[which])}
            for r, *x in images]
    return coco_box_metrics(coco, CLASSES, logging.getLogger(__name__))["AP50"]


def test_detections_are_matched_by_class_and_nearest_box_whatever_their_order():
    a = instances([[0, 0, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.8, 0.7], [0, 0, 1])
    b = instances([[50, 50, 60, 60.001], [0, 0, 10, 10], [1, 1, 11, 11]], [0.8, 0.7, 0.9],
                  [0, 1, 0])
    assert match_detections(a, b) == [(0, 2), (1, 0), (2, 1)]
    report = compare_outputs({"instances": a}, {"instances": b}, ["detection"])["detection"]
    assert report["unmatched"] == 0
    assert report["box_max_px"] == pytest.approx(1.0)
    assert report["score_max"] == pytest.approx(0.0)


def test_a_box_on_the_iou_threshold_is_found_and_taken_from_eager():
    """The ground truth covers [10, 30] x [10, 30]; a box [10, 10, 30, y2] inside it has IoU
    (y2 - 10) / 20: 0.5000005 eagerly and 0.4999995 exported, 2e-5 px apart."""
    images = [(record("a", (0, [10, 10, 30, 30])),
               instances([[10, 10, 30, 20.00001]], [0.9], [0]),
               instances([[10, 10, 30, 19.99999]], [0.9], [0]))]
    assert box_ap50(images, 0) == pytest.approx(100)
    assert box_ap50(images, 1) == pytest.approx(0)  # one false positive

    cases = edge_cases(images)
    assert [(c.image, c.eager, c.exported) for c in cases] == [(0, 0, 0)]
    assert "IoU" in cases[0].reason and "threshold 0.5" in cases[0].reason
    fixed = take_from_eager(images, cases)
    assert box_ap50([(r, a, f) for (r, a, _), f in zip(images, fixed)], 1) == pytest.approx(100)
    assert images[0][2].pred_boxes.tensor[0, 3] < 20  # the exported Instances are not changed


def test_boxes_away_from_every_threshold_are_no_edge_case():
    images = [(record("a", (0, [10, 10, 30, 30])),
               instances([[10, 10, 30, 27.5]], [0.9], [0]),
               instances([[10, 10, 30, 27.501]], [0.9], [0]))]
    assert edge_cases(images, ranking=True) == []


def test_a_box_area_on_a_size_range_limit_is_an_edge_case():
    """APs / APm part at 32 x 32 pixels: 32 x 31.99999 is small, 32 x 32.00001 is not."""
    images = [(record("a"), instances([[0, 0, 32, 31.99999]], [0.9], [1]),
               instances([[0, 0, 32, 32.00001]], [0.9], [1]))]
    cases = edge_cases(images)
    assert len(cases) == 1 and "area" in cases[0].reason


def test_near_equal_scores_that_swap_places_are_edge_cases_only_when_asked():
    """Two images' detections of one class, scores 1e-6 apart, in the other order exported: the
    ranking COCOeval builds over all images changes; the geometry does not."""
    images = [(record("a", (0, [0, 0, 20, 20])), instances([[0, 0, 20, 20]], [0.500001], [0]),
               instances([[0, 0, 20, 20]], [0.500000], [0])),
              (record("b"), instances([[0, 0, 20, 20]], [0.500000], [0]),
               instances([[0, 0, 20, 20]], [0.500002], [0]))]
    assert edge_cases(images) == []
    cases = edge_cases(images, ranking=True)
    assert sorted(c.image for c in cases) == [0, 1]
    assert all("changed places" in c.reason for c in cases)
    fixed = take_from_eager(images, cases)
    assert [float(f.scores[0]) for f in fixed] == [float(a.scores[0]) for _, a, _ in images]


class _Comparison:
    """What check_export_parity.failures reads of a pass: the worst differences, the metric
    lines that differ, and the edge-case explanation (which says whether it was asked)."""

    def __init__(self, worst, different):
        self.report = type("Report", (), {"worst": worst})()
        self._different, self.explained = different, False

    def different(self):
        return list(self._different)

    def explain_box_metrics(self):
        self.explained = True
        return ["1 detection(s) on an edge of COCOeval"], True


def test_box_metrics_are_explained_by_edges_only_when_every_detection_holds_the_limits():
    sys.path.insert(0, os.path.join(REPO, "tools"))
    from check_export_parity import failures

    differs = ["det AP50 28.67 eager, 28.66 exported: DIFFERENT"]
    close = _Comparison({"detection": {"box_max_px": 5e-5, "score_max": 1e-5, "unmatched": 0}},
                        differs)
    assert failures(close) == ([], ["1 detection(s) on an edge of COCOeval"])
    far = _Comparison({"detection": {"box_max_px": 3.0, "score_max": 1e-5, "unmatched": 0}},
                      differs)
    bad, explanation = failures(far)
    assert not far.explained and explanation == []
    assert bad == ["detection box_max_px 3"] + differs
    masks = _Comparison({"semantic": {"argmax_agreement": 1.0}},
                        ["sem mIoU 48.96 eager, 48.86 exported: DIFFERENT"])
    assert failures(masks) == (["sem mIoU 48.96 eager, 48.86 exported: DIFFERENT"], [])
    assert not masks.explained
