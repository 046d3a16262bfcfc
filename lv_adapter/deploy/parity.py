"""How close an exported model's answers are to the PyTorch model's, per image and task.

Detection: each eager detection is matched to the exported detection of the same class with the
nearest box (greedy, by L1 distance; near-equal scores may swap places in the top-k); the report
holds the largest coordinate difference in pixels and the largest score difference over the
matches, and how many found no partner. Mask tasks: the share of pixels whose argmax agrees.
"""
from collections import defaultdict

import torch

from lv_adapter.tasks import MaskTask, get_task

__all__ = ["ParityReport", "compare_outputs"]


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


def _compare_instances(a, b):
    """Largest box and score differences of the matched detections, and the unmatched count."""
    boxes_b, free = b.pred_boxes.tensor, torch.ones(len(b), dtype=torch.bool)
    box_diff = score_diff = 0.0
    unmatched = 0
    for box, score, cls in zip(a.pred_boxes.tensor, a.scores, a.pred_classes):
        candidates = torch.nonzero(free & (b.pred_classes == cls)).flatten()
        if not len(candidates):
            unmatched += 1
            continue
        distance = (boxes_b[candidates] - box).abs().sum(dim=1)
        j = candidates[distance.argmin()]
        free[j] = False
        box_diff = max(box_diff, float((boxes_b[j] - box).abs().max()))
        score_diff = max(score_diff, float((b.scores[j] - score).abs()))
    return {"box_max_px": box_diff, "score_max": score_diff, "unmatched": float(unmatched)}
