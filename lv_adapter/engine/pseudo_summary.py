"""The end of a pseudo-label generation: let the task finish its files (the detection parts are
merged), count what was written, and write the summary whose presence marks the task's pseudo
labels complete. What a task finishes and counts is its registration's
(``Task.finish_pseudo_labels``, ``Task.pseudo_work_paths``, ``Task.weak_pseudo_label_warnings``).

Everything here reads the files on disk (not what one process remembers), so a run that was
resumed, or split over several processes, ends with the same summary as one uninterrupted run.
"""
import json
import os
import shutil

from lv_adapter.data.pseudo_labels import pseudo_label_paths, summary_path
from lv_adapter.engine.pseudo_labeler import output_path
from lv_adapter.engine.pseudo_provenance import identity_path
from lv_adapter.tasks import get_task
from lv_adapter.utils.io import remove_stale_temporaries, write_json

__all__ = [
    "finish",
    "has_outputs",
    "read_summary",
    "remove_outputs",
    "remove_parts",
    "remove_stale_outputs",
    "weak_label_warnings",
]


def _folders(root, task):
    """The folders a generation of ``task`` writes files into: its per-image files', the
    merged file's when it merges parts (detection), and the root (the summary)."""
    spec = get_task(task)
    folders = [os.path.dirname(spec.pseudo_label_file(root, "x"))]
    if spec.pseudo_work_paths(root):
        folders.append(os.path.dirname(pseudo_label_paths(root)[task]))
    return list(dict.fromkeys(folders + [root]))


def remove_stale_outputs(root, task):
    """Remove the temporary files killed atomic writes left; returns their names.

    Call from one process while no other writes (before labeling starts).
    """
    return [name for folder in _folders(root, task) for name in remove_stale_temporaries(folder)]


def _outputs(root, task):
    paths = [summary_path(root, task), pseudo_label_paths(root)[task]]
    return paths + get_task(task).pseudo_work_paths(root)


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
    """Check that every image was labeled, let the task finish (merge), write and return the
    summary.

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
    counts = get_task(task).finish_pseudo_labels(root, image_ids)
    summary = {**about, "task": task, "images": len(image_ids), **counts}
    write_json(summary_path(root, task), summary, indent=2)  # last: the task is complete
    remove_parts(root, task)
    return summary


def remove_parts(root, task):
    """Delete the task's per-image parts of a complete generation (merged by then), and the
    folders they leave empty under ``root``."""
    inside = os.path.abspath(root) + os.sep
    for path in map(os.path.abspath, get_task(task).pseudo_work_paths(root)):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
        parent = os.path.dirname(path)
        while parent.startswith(inside) and os.path.isdir(parent) and not os.listdir(parent):
            os.rmdir(parent)
            parent = os.path.dirname(parent)


def weak_label_warnings(summary):
    """Warnings about pseudo labels that would mostly teach the student nothing or "no object"
    (the task's :meth:`Task.weak_pseudo_label_warnings`); an empty list when they look usable."""
    key = next(iter(summary.get("threshold", {})), "the threshold")
    return get_task(summary["task"]).weak_pseudo_label_warnings(summary, key)
