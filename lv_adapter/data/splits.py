"""The paper's training settings: which images of the multi-task train set keep which labels.

* ``full``: every image with all the labels it has.
* ``disjoint_normal``: 20000 drivable, 10000 detection and 7000 semantic images, pairwise disjoint
  (no image keeps labels of two tasks), as in the paper's main disjoint setting.
* ``disjoint_balance``: 7000 images per task, pairwise disjoint. Our choice: the paper's table 3
  shows fewer detection/drivable images than in "normal" but no exact counts, so we balance all
  tasks at the size of the semantic train set (10k-train, 7000 images), the largest size every
  task can reach.

The semantic pool loses the 10k-train images that are also 100k-val images (the leak), so it may
hold fewer than 7000 images; then write lists with smaller sizes with ``tools/make_splits.py``.

A split is ``{task: sorted list of image stems}``; it is stored as ``<folder>/<task>.txt``.
"""
import os
import random

from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.pseudo_labels import PSEUDO_TASKS_KEY
from lv_adapter.tasks import BUILTIN_TASKS, DETECTION, DRIVABLE, SEMANTIC, get_task, task_names
from lv_adapter.utils.io import atomic_path

__all__ = [
    "SETTINGS", "apply_split", "keep_tasks", "leaked_stems", "load_split", "make_split",
    "save_split",
]

SETTINGS = {
    "full": None,
    "disjoint_normal": {DRIVABLE: 20000, DETECTION: 10000, SEMANTIC: 7000},
    "disjoint_balance": {DRIVABLE: 7000, DETECTION: 7000, SEMANTIC: 7000},
}
# The tasks a split divides the images among: BDD100K's three, those of the paper's settings.
TASKS = BUILTIN_TASKS
# Smallest pool first, so the scarce semantic images are not taken by the other tasks.
PICK_ORDER = (SEMANTIC, DETECTION, DRIVABLE)
ALL_REMAINING = -1


def make_split(dicts, sizes, seed=0):
    """Draw pairwise-disjoint image lists, one per task, reproducibly.

    Args:
        dicts (list[dict]): dataset dicts with ``image_id`` and ``labeled_tasks``.
        sizes (dict[str, int]): images per task, for each of ``TASKS``; -1 takes every candidate
            left after the tasks drawn before it (semantic, then detection, then drivable).
        seed (int): seed of the ``random.Random`` that draws from the sorted candidates.

    Returns:
        dict[str, list[str]]: task -> sorted image stems.

    Raises:
        ValueError: a task is missing from ``sizes``, or a size is invalid or exceeds its pool.
    """
    if set(sizes) != set(TASKS):
        raise ValueError(f"split sizes must give exactly the tasks {TASKS}, got {sorted(sizes)}")
    rng = random.Random(seed)
    taken, split = set(), {}
    for task in PICK_ORDER:
        pool = sorted(d["image_id"] for d in dicts if task in d["labeled_tasks"])
        pool = [stem for stem in pool if stem not in taken]
        chosen = rng.sample(pool, _check_size(task, sizes[task], len(pool)))
        taken.update(chosen)
        split[task] = sorted(chosen)
    return {task: split[task] for task in TASKS}


def _check_size(task, size, pool_size):
    """Return the number of images to draw for ``task``."""
    if size == ALL_REMAINING:
        return pool_size
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"split size of {task} must be an integer >= 0 or -1, got {size!r}")
    if size > pool_size:
        raise ValueError(
            f"split size of {task} is {size} but only {pool_size} images labeled for {task} "
            "are left to draw from"
        )
    return size


def split_file(folder, task):
    """Path of the list of ``task`` in a split folder."""
    return os.path.join(folder, f"{task}.txt")


def save_split(split, folder):
    """Write ``split`` as ``folder/<task>.txt`` (sorted, one stem per line), each atomically."""
    for task in TASKS:
        with atomic_path(split_file(folder, task)) as tmp, open(tmp, "w") as f:
            f.writelines(f"{stem}\n" for stem in sorted(split[task]))


def load_split(folder):
    """Read the three lists written by :func:`save_split`.

    Returns:
        dict[str, list[str]]: task -> sorted image stems.

    Raises:
        BadSampleError: a list is missing, not text, or holds a line that is not a single stem
            (blank, with spaces) or a stem twice; the error names the file and the line.
    """
    return {task: _read_list(split_file(folder, task)) for task in TASKS}


def _read_list(path):
    if not os.path.isfile(path):
        raise BadSampleError(path, "split list not found")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise BadSampleError(path, f"split list is not UTF-8 text ({e})") from None
    seen = set()
    for number, line in enumerate(lines, 1):
        if not line or line != line.strip() or len(line.split()) != 1 or "/" in line:
            raise BadSampleError(path, f"line {number} is not an image stem: {line!r}")
        if line in seen:
            raise BadSampleError(path, f"line {number}: image {line!r} is listed twice")
        seen.add(line)
    return sorted(lines)


def apply_split(dicts, split, source=None):
    """Keep the images of ``split``, each with the labels of the tasks whose list holds it.

    Args:
        dicts (list[dict]): dataset dicts (not modified).
        split (dict[str, list[str]]): task -> image stems.
        source (str or None): the split folder, named in errors.

    Returns:
        list[dict]: copies of the listed images' dicts; ``labeled_tasks`` is the tasks whose list
        holds the image, and the label keys of the other tasks are removed.

    Raises:
        BadSampleError: a list names an image that has no labels for that task (or is absent).
    """
    members = {task: set(split[task]) for task in TASKS}
    out = []
    for d in dicts:
        kept = [task for task in TASKS if d["image_id"] in members[task]]
        if kept:
            out.append(keep_tasks(d, kept, source))
    found = {d["image_id"] for d in dicts}
    absent = [(task, stem) for task in TASKS for stem in sorted(members[task] - found)]
    if absent:
        raise _not_labeled(*absent[0], source)
    return out


def keep_tasks(d, kept, source=None):
    """Copy of ``d`` labeled for the tasks ``kept`` only (a subset of its ``labeled_tasks``).

    The label keys of the other tasks are removed, and ``pseudo_tasks``, when present, keeps the
    pseudo-labeled tasks among ``kept``. ``source`` (a split folder) is named in errors.
    """
    for task in kept:
        if task not in d["labeled_tasks"]:
            raise _not_labeled(task, d["image_id"], source)
    dropped = {key for task in task_names() if task not in kept
               for key in get_task(task).label_keys}
    out = {k: v for k, v in d.items() if k not in dropped}
    out["labeled_tasks"] = list(kept)
    if PSEUDO_TASKS_KEY in d:
        out[PSEUDO_TASKS_KEY] = [task for task in d[PSEUDO_TASKS_KEY] if task in kept]
    return out


def _not_labeled(task, stem, source):
    where = split_file(source, task) if source else f"the {task} split list"
    problem = f"image {stem!r} is listed for {task} but has no {task} labels (missing mask/labels)"
    return BadSampleError(where, problem)


def leaked_stems(ten_k_train_stems, hundred_k_val_stems):
    """Stems of 10k-train images that are also 100k-val images (the same picture).

    Training on them while validating detection/drivable on 100k-val would leak test images.
    """
    return set(ten_k_train_stems) & set(hundred_k_val_stems)
