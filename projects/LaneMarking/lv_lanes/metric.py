"""The official lane-marking metric (BDD100K toolkit, ``bdd100k.eval.lane``), computed here.

For each image, each sub-task (direction, style, category: :data:`~.encoding.SUB_TASKS`) and each
of its values, the ground-truth and predicted pixels of that value (lane pixels only) are
compared as boundaries with a tolerance of r = 1, 2 and 5 pixels: a predicted pixel is correct
when a ground-truth pixel lies within the disk of radius r around it (precision), a ground-truth
pixel is found when a predicted one does (recall), and the image's score is their F-measure
(both empty: 1; one empty: 0). Scores are averaged over the images, in percent; a sub-task's
score is the mean over its values, and the overall score the mean over the three sub-tasks.
"""
import cv2
import numpy as np

from lv_lanes.encoding import SUB_TASKS, decode

__all__ = ["TOLERANCES", "LaneScores", "flat_toolkit_table", "format_table", "image_scores"]

TOLERANCES = (1, 2, 5)


def _disk(radius):
    """The (2r+1)x(2r+1) structuring element of the pixels within ``radius`` of the centre."""
    y, x = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


_DISKS = {radius: _disk(radius) for radius in TOLERANCES}


def _f_score(gt, pred, radius):
    """Boundary F-measure of two bool masks with tolerance ``radius`` (module doc)."""
    n_gt, n_pred = int(gt.sum()), int(pred.sum())
    if n_gt == 0 or n_pred == 0:
        return float(n_gt == n_pred)  # both empty: perfect; one empty: precision or recall 0
    near_gt = cv2.dilate(gt.view(np.uint8), _DISKS[radius]).view(bool)
    near_pred = cv2.dilate(pred.view(np.uint8), _DISKS[radius]).view(bool)
    precision = np.count_nonzero(pred & near_gt) / n_pred
    recall = np.count_nonzero(gt & near_pred) / n_gt
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def image_scores(gt_mask, pred_mask):
    """F-scores of one image.

    Args:
        gt_mask, pred_mask (np.ndarray): HxW uint8 lane byte masks of the same size.

    Returns:
        dict[str, np.ndarray]: sub-task -> [number of its values, len(TOLERANCES)] scores in
        [0, 1].
    """
    gt, pred = decode(gt_mask), decode(pred_mask)
    scores = {}
    for name, (_, _, values) in SUB_TASKS.items():
        scores[name] = np.array([
            [_f_score(gt["foreground"] & (gt[name] == v), pred["foreground"] & (pred[name] == v),
                      radius) for radius in TOLERANCES]
            for v in range(len(values))
        ])
    return scores


class LaneScores:
    """Sums per-image scores; :meth:`results` gives the toolkit's table."""

    def __init__(self):
        self.total = {name: np.zeros((len(v), len(TOLERANCES))) for name, (_, _, v) in
                      SUB_TASKS.items()}
        self.images = 0

    def add(self, scores):
        """Add one image's :func:`image_scores`."""
        for name, array in scores.items():
            self.total[name] += array
        self.images += 1

    def merge(self, other):
        """Add another accumulator's images (results gathered from other processes)."""
        for name, array in other.total.items():
            self.total[name] += array
        self.images += other.images

    def results(self):
        """Percent, per tolerance r: ``F1_pix{r}/{value}`` for every value of every sub-task,
        ``F1_pix{r}/{SUB-TASK}`` (the mean over its values, the name upper-cased as the toolkit
        does) and ``F1_pix{r}`` (the mean of the three sub-tasks). Empty without images."""
        if not self.images:
            return {}
        out, overall = {}, np.zeros(len(TOLERANCES))
        for name, (_, _, values) in SUB_TASKS.items():
            mean = 100 * self.total[name] / self.images
            for value, row in zip(values, mean):
                out.update({f"F1_pix{r}/{value}": float(s) for r, s in zip(TOLERANCES, row)})
            task = mean.mean(axis=0)
            out.update({f"F1_pix{r}/{name.upper()}": float(s) for r, s in zip(TOLERANCES, task)})
            overall += task / len(SUB_TASKS)
        out.update({f"F1_pix{r}": float(s) for r, s in zip(TOLERANCES, overall)})
        return out


def format_table(results):
    """The toolkit's table: one row per value and sub-task average, F1 at each tolerance."""
    header = f"{'':24s}" + "".join(f"{f'F1 {r} px':>10s}" for r in TOLERANCES)
    lines = [header]

    def row(label, key):
        return f"{label:24s}" + "".join(f"{results[f'F1_pix{r}' + key]:10.2f}" for r in TOLERANCES)

    for name, (_, _, values) in SUB_TASKS.items():
        lines += [row(f"{name}: {value}", f"/{value}") for value in values]
        lines.append(row(f"{name} (average)", f"/{name.upper()}"))
    lines.append(row("overall (average)", ""))
    return "\n".join(lines)


def flat_toolkit_table(table):
    """The official toolkit's lane output (``bdd100k.eval.run -t lane_mark --out-file``: per
    tolerance, a row per sub-task's values, a row of sub-task averages, the overall average) in
    :meth:`LaneScores.results`' keys."""
    flat = {}
    for r in TOLERANCES:
        rows = table[f"F1_pix{r}"]
        for row in rows[:len(SUB_TASKS)]:
            flat.update({f"F1_pix{r}/{name}": value for name, value in row.items()})
        flat.update({f"F1_pix{r}/{name}": value for name, value in rows[-2].items()})
        flat[f"F1_pix{r}"] = rows[-1]["AVERAGE"]
    return flat
