"""Per-task summary of a list of dataset dicts: what a dataset holds, at a glance."""
import collections

import numpy as np

from lv_adapter.data.pseudo_labels import PSEUDO_TASKS_KEY
from lv_adapter.data.readers import read_record_mask
from lv_adapter.tasks import DETECTION, mask_task_names, task_classes, task_names


def summarize(dicts, read_masks=True, metadata=None):
    """Count images per task, boxes per class and (optionally) pixel shares per mask class.

    Args:
        metadata: the dataset's metadata, whose classes name the label ids (None: BDD100K's).

    Returns:
        dict: ``images`` (total), ``labeled`` (task -> images, ground truth or pseudo),
        ``pseudo`` (task -> images with pseudo labels), ``task_sets`` (tuple of tasks ->
        images), ``boxes`` (class -> targets), ``ignore_boxes`` (class -> crowd/ignore regions),
        ``pixels`` (task -> class -> fraction of labeled pixels; only when ``read_masks``),
        ``classes`` (task -> class names).
    """
    classes = {task: task_classes(metadata, task) for task in task_names()}
    out = {
        "classes": classes,
        "images": len(dicts),
        "labeled": collections.Counter(),
        "pseudo": collections.Counter(),
        "task_sets": collections.Counter(),
        "boxes": collections.Counter(),
        "ignore_boxes": collections.Counter(),
        "pixels": {},
    }
    for d in dicts:
        tasks = tuple(d.get("labeled_tasks", ()))
        out["task_sets"][tasks] += 1
        out["labeled"].update(tasks)
        out["pseudo"].update(d.get(PSEUDO_TASKS_KEY, ()))
        for anno in d.get("annotations", []):
            key = "ignore_boxes" if anno.get("iscrowd", 0) else "boxes"
            out[key][classes[DETECTION][anno["category_id"]]] += 1
    if read_masks:
        out["pixels"] = {t: _pixel_shares(dicts, t, classes[t]) for t in mask_task_names()}
    return out


def _pixel_shares(dicts, task, classes):
    counts = np.zeros(256, dtype=np.int64)
    for d in dicts:
        if task in d.get("labeled_tasks", ()):
            mask = read_record_mask(d, task, (d["height"], d["width"]), len(classes))
            counts += np.bincount(mask.ravel(), minlength=256)
    total = max(counts[: len(classes)].sum(), 1)
    return {name: counts[i] / total for i, name in enumerate(classes)}


def format_summary(name, summary):
    """A few readable lines of :func:`summarize`'s result."""
    lines = [f"{name}: {summary['images']} images"]
    for task in task_names():
        pseudo = summary["pseudo"][task]
        more = f" ({pseudo} of them pseudo labels)" if pseudo else ""
        lines.append(f"  {task:10s} labeled on {summary['labeled'][task]} images{more}")
    combos = sorted(summary["task_sets"].items())
    sets = ", ".join(f"{'+'.join(t) or 'none'}: {n}" for t, n in combos)
    lines.append(f"  label combinations: {sets}")
    if summary["labeled"][DETECTION]:
        boxes = ", ".join(f"{c} {summary['boxes'][c]}" for c in summary["classes"][DETECTION]
                          if summary["boxes"][c])
        ignore = sum(summary["ignore_boxes"].values())
        lines.append(f"  boxes: {boxes}; ignore regions: {ignore}")
    for task, shares in summary["pixels"].items():
        if summary["labeled"][task]:
            top = sorted(shares.items(), key=lambda kv: -kv[1])
            shown = ", ".join(f"{c} {s:.0%}" for c, s in top if s >= 0.005)
            lines.append(f"  {task} pixels: {shown}")
    return "\n".join(lines)
