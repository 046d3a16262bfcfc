"""The end of a pseudo-label generation: merge the detection parts, count what was written, and
write the summary whose presence marks the task's pseudo labels complete.

Everything here reads the files on disk (not what one process remembers), so a run that was
resumed, or split over several processes, ends with the same summary as one uninterrupted run.
"""
import collections
import json
import os
import shutil

import cv2
import numpy as np

from lv_adapter.data.pseudo_labels import pseudo_label_paths, summary_path
from lv_adapter.engine.pseudo_labeler import output_path
from lv_adapter.engine.pseudo_provenance import identity_path
from lv_adapter.tasks import DETECTION, IGNORE_LABEL, get_task
from lv_adapter.tasks.detection import PARTS_FOLDER
from lv_adapter.utils.io import remove_stale_temporaries, write_json

__all__ = [
    "finish",
    "has_outputs",
    "read_summary",
    "remove_outputs",
    "remove_parts",
    "remove_stale_outputs",
]

# Shares and means in the summary are rounded to this many decimals.
DECIMALS = 6


def _parts_folder(root):
    """Where the per-image detection frames wait for the merge."""
    return os.path.join(root, PARTS_FOLDER, DETECTION)


def _folders(root, task):
    """The folders a generation of ``task`` writes files into."""
    if task == DETECTION:
        return [_parts_folder(root),
                os.path.dirname(pseudo_label_paths(root)[DETECTION]), root]
    return [pseudo_label_paths(root)[task], root]


def remove_stale_outputs(root, task):
    """Remove the temporary files killed atomic writes left; returns their names.

    Call from one process while no other writes (before labeling starts).
    """
    return [name for folder in _folders(root, task) for name in remove_stale_temporaries(folder)]


def _outputs(root, task):
    paths = [summary_path(root, task), pseudo_label_paths(root)[task]]
    return paths + [_parts_folder(root)] if task == DETECTION else paths


def has_outputs(root, task):
    """Whether ``root`` holds any label (or summary) of ``task``."""
    return any(os.path.isfile(p) or (os.path.isdir(p) and os.listdir(p))
               for p in _outputs(root, task))


def remove_outputs(root, task):
    """Delete everything a generation of ``task`` wrote under ``root`` (``--force``), the
    record of its teacher included."""
    paths = _outputs(root, task) + [identity_path(root, task)]
    for path in paths:
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def read_summary(root, task):
    """The summary of a complete generation, or None when there is none."""
    path = summary_path(root, task)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def finish(root, task, image_ids, about):
    """Check that every image was labeled, merge (detection), write and return the summary.

    Args:
        root (str): pseudo-label root.
        task (str): the task labeled.
        image_ids (list[str]): every image that had to be labeled, sorted.
        about (dict): what produced the labels (dataset, teacher, thresholds), put first.
    """
    missing = [i for i in image_ids if not os.path.isfile(output_path(root, task, i))]
    if missing:
        raise RuntimeError(
            f"{len(missing)} of {len(image_ids)} images have no {task} pseudo label under {root} "
            f"(first: {missing[0]}); run the same command again to label them"
        )
    if task == DETECTION:
        counts = _merge_detection(root, image_ids)
    else:
        counts = _count_pixels(root, task, image_ids)
    summary = {**about, "task": task, "images": len(image_ids), **counts}
    write_json(summary_path(root, task), summary, indent=2)  # last: the task is complete
    remove_parts(root, task)
    return summary


def remove_parts(root, task):
    """Delete the per-image detection parts of a complete generation (merged into one file)."""
    parts = _parts_folder(root)
    if task == DETECTION and os.path.isdir(parts):
        shutil.rmtree(parts)
        if not os.listdir(os.path.join(root, PARTS_FOLDER)):
            os.rmdir(os.path.join(root, PARTS_FOLDER))


def _merge_detection(root, image_ids):
    """Write ``det_train.json`` (frames sorted by name) from the parts; return box counts."""
    frames, too_small = [], 0
    for image_id in image_ids:
        part = _read_part(output_path(root, DETECTION, image_id))
        frames.append(part["frame"])
        too_small += part["boxes_below_one_pixel"]
    frames.sort(key=lambda frame: frame["name"])
    write_json(pseudo_label_paths(root)[DETECTION], frames)
    per_class = collections.Counter(label["category"] for fr in frames for label in fr["labels"])
    boxes = sum(per_class.values())
    return {
        "boxes": boxes,
        "boxes_per_image": round(boxes / max(len(frames), 1), DECIMALS),
        "images_without_boxes": sum(not frame["labels"] for frame in frames),
        "boxes_per_class": {name: per_class[name] for name in get_task(DETECTION).classes},
        "boxes_below_one_pixel": too_small,
    }


def _read_part(path):
    try:
        with open(path, encoding="utf-8") as f:
            part = json.load(f)
        if not isinstance(part, dict) or not {"frame", "boxes_below_one_pixel"} <= part.keys():
            raise ValueError("not a part written by this tool")
        return part
    except (ValueError, OSError) as e:  # JSONDecodeError is a ValueError
        raise ValueError(f"{path}: unreadable detection part ({e}); delete it and run the same "
                         "command again: its image is labeled again") from None


def _count_pixels(root, task, image_ids):
    """Per-class share of all pixels and the share left at 255, read from the masks."""
    classes = get_task(task).classes
    counts = np.zeros(256, dtype=np.int64)
    for image_id in image_ids:
        path = output_path(root, task, image_id)
        mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise OSError(f"{path}: cannot read this pseudo-label mask")
        counts += np.bincount(mask.ravel(), minlength=256)
    total = int(counts.sum())

    def share(count):
        return round(float(count) / total, DECIMALS) if total else 0.0

    return {
        "pixels": total,
        "ignored_share": share(counts[IGNORE_LABEL]),
        "class_coverage": {name: share(counts[i]) for i, name in enumerate(classes)},
    }


# More than this share of images without a box, or of pixels left at 255, is worth a warning.
WEAK_SHARE = 0.5


def weak_label_warnings(summary):
    """Warnings about pseudo labels that would mostly teach the student nothing or "no object".

    An image with a pseudo detection frame but no box trains the detection head that the image
    holds no object; a weak teacher (or a threshold above its scores) writes such frames for most
    images. Returns a list of messages (empty when the labels look usable).
    """
    images = max(summary.get("images", 0), 1)
    key = next(iter(summary.get("threshold", {})), "the threshold")
    if summary.get("task") == DETECTION:
        empty = summary["images_without_boxes"]
        if empty / images > WEAK_SHARE:
            return [f"{empty} of {summary['images']} images got no detection box at or above "
                    f"{key}: the student will learn that they hold no object. Train the "
                    f"teacher longer or lower {key} (its scores are in the teacher's "
                    f"evaluation export, inference/*/bdd100k/det.json)"]
        return []
    ignored = summary.get("ignored_share", 0.0)
    if ignored > WEAK_SHARE:
        return [f"{ignored:.0%} of the {summary['task']} pixels are left at 255 (below {key}): "
                f"the pseudo masks label little; train the teacher longer or lower {key}"]
    return []
