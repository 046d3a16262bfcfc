"""How close an exported model's answers are to the PyTorch model's, per image and task.

Detection: each eager detection is matched to the exported detection of the same class with the
nearest box (greedy, by L1 distance; near-equal scores may swap places in the top-k); the report
holds the largest coordinate difference in pixels and the largest score difference over the
matches, and how many found no partner. Mask tasks: the share of pixels whose argmax agrees.

Box AP is not continuous in the boxes and scores: a detection whose IoU with a ground-truth box
is 0.500004 in PyTorch and 0.499999 in onnxruntime (boxes 5e-5 px apart, float32 rounding)
counts as a true positive once and a false positive once, and moves AP50 by about 0.01 on a few
hundred images. :func:`edge_cases` finds such detections (an IoU or area on the other side of one
of COCOeval's thresholds, or a score that changed places with another in the ranking);
:func:`take_from_eager` gives the exported detections with those few taken from PyTorch, so a
metric difference can be told apart from a runtime that answers differently.
"""
from collections import defaultdict

import numpy as np
import torch
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import Params

from lv_adapter.evaluation.detection import ground_truth_boxes, predicted_boxes
from lv_adapter.tasks import MaskTask, get_task

__all__ = ["EdgeCase", "ParityReport", "compare_outputs", "edge_cases", "match_detections",
           "take_from_eager"]


class ParityReport:
    """Accumulates :func:`compare_outputs` over images: the worst case of each task."""

    def __init__(self):
        self.worst = defaultdict(dict)

    def add(self, eager, exported, tasks):
        """Compare one image's outputs (the model's dicts) for ``tasks``."""
        for task, values in compare_outputs(eager, exported, tasks).items():
            for key, value in values.items():
                old = self.worst[task].get(key)
                worse = min if key == "argmax_agreement" else max
                self.worst[task][key] = value if old is None else worse(old, value)

    def lines(self):
        """One line per task."""
        return [f"{task}: " + ", ".join(f"{k} {v:.6g}" for k, v in values.items())
                for task, values in self.worst.items()]


def compare_outputs(eager, exported, tasks):
    """{task: {measure: value}} for one image (module doc)."""
    report = {}
    for task in tasks:
        spec = get_task(task)
        a, b = eager[spec.output_key], exported[spec.output_key]
        if isinstance(spec, MaskTask):
            agree = (a.argmax(dim=0) == b.argmax(dim=0)).float().mean()
            report[task] = {"argmax_agreement": float(agree)}
        else:
            report[task] = _compare_instances(a, b)
    return report


def match_detections(a, b):
    """Pairs ``[(i, j)]``: each detection ``i`` of Instances ``a``, in its order, with the unused
    detection ``j`` of ``b`` of the same class whose box is nearest (L1). An ``i`` without a
    partner is left out."""
    boxes_b, free = b.pred_boxes.tensor, torch.ones(len(b), dtype=torch.bool)
    pairs = []
    for i, (box, cls) in enumerate(zip(a.pred_boxes.tensor, a.pred_classes)):
        candidates = torch.nonzero(free & (b.pred_classes == cls)).flatten()
        if len(candidates):
            j = int(candidates[(boxes_b[candidates] - box).abs().sum(dim=1).argmin()])
            free[j] = False
            pairs.append((i, j))
    return pairs


def _compare_instances(a, b):
    """Largest box and score differences of the matched detections, and the unmatched count."""
    pairs = match_detections(a, b)
    box_diff = score_diff = 0.0
    for i, j in pairs:
        box_diff = max(box_diff, float((b.pred_boxes.tensor[j] - a.pred_boxes.tensor[i])
                                       .abs().max()))
        score_diff = max(score_diff, float((b.scores[j] - a.scores[i]).abs()))
    return {"box_max_px": box_diff, "score_max": score_diff,
            "unmatched": float(len(a) - len(pairs))}


class EdgeCase:
    """One detection whose eager and exported versions lie on two sides of a COCOeval line.

    Attributes:
        image (int): index into the ``images`` given to :func:`edge_cases`.
        eager, exported (int): the detection's index in each model's Instances.
        reason (str): which line, with both values.
    """

    def __init__(self, image, eager, exported, reason):
        self.image, self.eager, self.exported, self.reason = image, eager, exported, reason


def edge_cases(images, ranking=False):
    """The detections whose tiny differences can change box AP (module doc).

    Args:
        images (list[tuple]): per image ``(dataset dict, eager Instances, exported Instances)``;
            the dict's ``annotations`` are the ground truth.
        ranking (bool): also the detections whose place in their class's score ranking over
            all images differs (near-equal scores swapped).

    Returns:
        list[EdgeCase]: the matched detections whose IoU with a ground-truth box of the class,
        or whose box area, lies on two sides of one of COCOeval's thresholds (and with
        ``ranking``, those that changed places).
    """
    params = Params(iouType="bbox")
    area_limits = sorted({a for rng in params.areaRng for a in rng})
    cases, ranked = [], defaultdict(list)
    for k, (record, a, b) in enumerate(images):
        dets_a, dets_b = predicted_boxes(a), predicted_boxes(b)
        gt = ground_truth_boxes(record)
        for i, j in match_detections(a, b):
            da, db = dets_a[i], dets_b[j]
            reason = (_iou_edge(da, db, gt, params.iouThrs)
                      or _line_between(_area(da), _area(db), area_limits, "area"))
            if reason:
                cases.append(EdgeCase(k, i, j, reason))
            ranked[da["category_id"]].append((k, i, j, da["score"], db["score"]))
    if not ranking:
        return cases
    seen = {(c.image, c.eager) for c in cases}
    return cases + [c for c in _rank_changes(ranked) if (c.image, c.eager) not in seen]


def _area(det):
    x1, y1, x2, y2 = det["bbox"]
    return (x2 - x1) * (y2 - y1)


def _line_between(u, v, lines, what):
    """A reason when a line lies between ``u`` and ``v`` (or on one of them), else None."""
    for line in lines:
        if min(u, v) <= line <= max(u, v) and u != v:
            return f"{what} {u:.7g} eager, {v:.7g} exported (threshold {line:.7g})"
    return None


def _iou_edge(da, db, gt, thresholds):
    """A reason when an IoU with a ground-truth box of the class (COCOeval's: crowd boxes by
    the detection's area) crosses a threshold, else None."""
    same = [g for g in gt if g["category_id"] == da["category_id"]]
    if not same:
        return None
    xywh = [[x1, y1, x2 - x1, y2 - y1] for x1, y1, x2, y2 in
            [da["bbox"], db["bbox"]] + [g["bbox"] for g in same]]
    ious = mask_utils.iou(xywh[:2], xywh[2:], [g["iscrowd"] for g in same])
    for u, v in zip(ious[0], ious[1]):
        reason = _line_between(float(u), float(v), thresholds, "IoU")
        if reason:
            return reason
    return None


def _rank_changes(ranked):
    """Detections whose place in their class's ranking (by score, over every image, ties in
    image order as in COCOeval) differs between the two models."""
    cases = []
    for entries in ranked.values():
        scores_a = np.array([e[3] for e in entries])
        scores_b = np.array([e[4] for e in entries])
        place_a = np.argsort(np.argsort(-scores_a, kind="mergesort"), kind="mergesort")
        place_b = np.argsort(np.argsort(-scores_b, kind="mergesort"), kind="mergesort")
        for n in np.flatnonzero(place_a != place_b):
            k, i, j, u, v = entries[n]
            cases.append(EdgeCase(k, i, j, f"score {u:.7g} eager, {v:.7g} exported changed "
                                           f"places in the ranking ({place_a[n]} -> "
                                           f"{place_b[n]})"))
    return cases


def take_from_eager(images, cases):
    """Each image's exported Instances, copied, with the box and score of every edge case
    replaced by the eager model's (``images`` as in :func:`edge_cases`)."""
    fixed = []
    for k, (_, a, b) in enumerate(images):
        b = b[torch.arange(len(b))]  # a copy
        for case in (c for c in cases if c.image == k):
            b.pred_boxes.tensor[case.exported] = a.pred_boxes.tensor[case.eager]
            b.scores[case.exported] = a.scores[case.eager]
        fixed.append(b)
    return fixed
