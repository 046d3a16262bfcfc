"""Where pseudo labels live: the contract between the generator and the loader.

A pseudo-label root mirrors BDD100K's own label layout, so that the BDD100K loader and readers
read pseudo labels exactly as they read ground truth::

    labels/det_20/det_train.json            det_20 frames; each label has a "score"
    labels/sem_seg/masks/train/<stem>.png    label ids 0..18, 255 = not confident
    labels/drivable/masks/train/<stem>.png   label ids 0..2, 255 = not confident
    summary_<task>.json                      written last: that task's labels are complete

The default root of a training setting is ``<datasets root>/bdd100k/pseudo/<setting>``.

Dataset dicts that carry pseudo labels name them in ``pseudo_tasks`` (a subset of
``labeled_tasks``); the mapper passes it on to the model input.

Reading and merging (pure functions): :func:`load_pseudo_labels` reads a root with the BDD100K
loader's readers; :func:`merge_pseudo_labels` fills the tasks a dataset dict lacks, ground truth
always winning. :func:`register_with_pseudo_labels` registers any training set with any root;
the ``bdd100k_<setting>_train_pseudo`` names are registered by
:mod:`lv_adapter.data.datasets.builtin`.
"""
import collections
import functools
import json
import logging
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from lv_adapter.data.datasets.bdd100k import format_task_counts
from lv_adapter.data.errors import BadSampleError, BadSampleHandler
from lv_adapter.tasks import get_task, task_names

__all__ = [
    "PSEUDO_TASKS_KEY",
    "check_pseudo_tasks",
    "default_pseudo_root",
    "ground_truth_tasks",
    "load_pseudo_labels",
    "load_with_pseudo_labels",
    "merge_pseudo_labels",
    "pseudo_label_paths",
    "register_with_pseudo_labels",
    "summary_path",
]

logger = logging.getLogger(__name__)

# Dataset-dict and model-input key: the labeled tasks whose labels are a teacher's, not people's.
PSEUDO_TASKS_KEY = "pseudo_tasks"
GENERATOR = "tools/generate_pseudo_labels.py"  # named in the errors about a root


def default_pseudo_root(datasets_root, setting):
    """``<datasets_root>/bdd100k/pseudo/<setting>``."""
    return os.path.join(datasets_root, "bdd100k", "pseudo", setting)


def pseudo_label_paths(pseudo_root):
    """The label file (detection) or folder (mask tasks) of each task under ``pseudo_root``
    (each registration's ``pseudo_path``, BDD100K's layout).

    Returns:
        dict[str, str]: task -> path, for every registered task.
    """
    return {task: os.path.join(pseudo_root, get_task(task).pseudo_path) for task in task_names()}


def summary_path(pseudo_root, task):
    """The summary a finished generation writes last; its presence marks ``task`` complete."""
    get_task(task)  # a ValueError naming the registered tasks
    return os.path.join(pseudo_root, f"summary_{task}.json")


def ground_truth_tasks(record):
    """The tasks a dataset dict has ground truth for: ``labeled_tasks`` minus ``pseudo_tasks``."""
    pseudo = record.get(PSEUDO_TASKS_KEY, ())
    return [task for task in record.get("labeled_tasks", ()) if task not in pseudo]


def load_pseudo_labels(pseudo_root, on_bad_sample=None):
    """Read the pseudo labels of every task under ``pseudo_root`` (layout: module doc).

    Frames and masks go through the BDD100K loader's readers, so a malformed file gets the same
    error, naming it; each detection label must have a ``score`` in [0, 1], kept in its
    annotation. The masks themselves are read later, by the mapper's readers.

    Args:
        pseudo_root (str): a folder written by the generator.
        on_bad_sample (str or None): policy for a bad frame ("raise"/"skip"; None: the global
            default). A missing or malformed file always raises.

    Returns:
        dict[str, dict[str, dict]]: task -> image stem -> that task's label keys
        (``annotations``, ``sem_seg_file_name`` or ``drivable_file_name``), for the tasks with
        complete labels; a task without any is logged and left out.

    Raises:
        BadSampleError: the root is missing, or a task has label files but no summary (its
            generation is unfinished).
    """
    if not os.path.isdir(pseudo_root):
        raise BadSampleError(
            pseudo_root, f"pseudo-label root not found; write it with {GENERATOR}"
        )
    handler = BadSampleHandler(on_bad_sample, what="pseudo-label frame")
    labels = {}
    for task, path in pseudo_label_paths(pseudo_root).items():
        if _is_complete(pseudo_root, task, path):
            labels[task] = _read_task(task, path, handler) if os.path.exists(path) else {}
            _check_count(pseudo_root, task, path, len(labels[task]))
    counts = ", ".join(f"{task} {len(labels[task])}" for task in labels) or "none"
    logger.info(f"Loaded pseudo labels from {pseudo_root}: images per task: {counts}")
    return labels


def _is_complete(pseudo_root, task, path):
    """True when ``task`` has a summary; False (logged) when it has nothing; raises when it has
    label files but no summary."""
    summary = summary_path(pseudo_root, task)
    if os.path.isfile(summary):
        return True
    if os.path.exists(path):
        raise BadSampleError(
            pseudo_root,
            f"the {task} pseudo labels are incomplete: {path} exists but {summary} does not "
            f"(the generation was interrupted or is still running). Run {GENERATOR} for this "
            "root again: it resumes where it stopped",
        )
    logger.warning(f"no {task} pseudo labels under {pseudo_root} (neither {path} nor {summary})")
    return False


def _check_count(pseudo_root, task, path, found):
    """The summary counts the images its generation labeled: fewer files (some deleted, or
    another root copied over part of this one) would train on a subset without a word."""
    summary = summary_path(pseudo_root, task)
    try:
        with open(summary, encoding="utf-8") as f:
            expected = json.load(f).get("images")
    except (OSError, ValueError) as e:
        raise BadSampleError(summary, f"unreadable pseudo-label summary ({e}); run {GENERATOR} "
                                      "for this root again with --force") from None
    if expected is not None and expected != found:  # (a summary written by hand may not say)
        raise BadSampleError(
            path, f"holds {task} pseudo labels of {found} images but {summary} counts "
                  f"{expected}: the root was changed after its generation. Run {GENERATOR} "
                  "for this root again with --force")


def _read_task(task, path, handler):
    """image stem -> label keys of ``task`` read from its file or folder (the task's hook)."""
    labels = get_task(task).read_pseudo_labels(path, handler)
    if handler.count:
        logger.warning(f"skipped {handler.count} bad frames of {path}")
    return labels


def merge_pseudo_labels(dicts, pseudo, source="pseudo labels"):
    """Fill each image's tasks without ground truth with its pseudo labels.

    Per image and per task, ground truth wins: a pseudo label of a task the image is labeled for
    is not used. Pseudo labels of images not in ``dicts`` are not used either. Both are counted
    and logged with a few of the images named.

    Args:
        dicts (list[dict]): dataset dicts with ``image_id`` and ``labeled_tasks`` (not modified).
        pseudo (dict): :func:`load_pseudo_labels`' result.
        source (str): where ``pseudo`` comes from, for the log.

    Returns:
        list[dict]: a copy of each dict, in order; ``labeled_tasks`` also holds the filled tasks
        (registration order), ``pseudo_tasks`` (list) names them ([] when none), and the filled
        tasks' label keys are added.
    """
    used = {task: set() for task in pseudo}
    overridden = collections.Counter()
    out = []
    for d in dicts:
        d = dict(d)
        labeled, filled = set(d["labeled_tasks"]), set(d.get(PSEUDO_TASKS_KEY, ()))
        for task, labels in pseudo.items():
            if d["image_id"] not in labels:
                continue
            used[task].add(d["image_id"])
            if task in labeled:
                overridden[task] += 1
                continue
            d.update(labels[d["image_id"]])
            labeled.add(task)
            filled.add(task)
        d["labeled_tasks"] = [task for task in task_names() if task in labeled]
        d[PSEUDO_TASKS_KEY] = [task for task in task_names() if task in filled]
        out.append(d)
    _log_merge(out, pseudo, used, overridden, source)
    return out


def _log_merge(dicts, pseudo, used, overridden, source):
    logger.info(f"Pseudo labels from {source} fill images per task: "
                f"{format_task_counts(dicts, list(pseudo), PSEUDO_TASKS_KEY)}")
    if overridden:
        counts = ", ".join(f"{t} {overridden[t]}" for t in task_names() if overridden[t])
        logger.warning(f"Ground truth wins over the pseudo labels of {source} on images per "
                       f"task: {counts}; those pseudo labels are not used")
    for task, labels in pseudo.items():
        unknown = sorted(set(labels) - used[task])
        if unknown:
            shown = ", ".join(unknown[:5]) + (f" (and {len(unknown) - 5} more)"
                                              if len(unknown) > 5 else "")
            logger.warning(f"{len(unknown)} {task} pseudo labels of {source} are of images not "
                           f"in the dataset, and not used: {shown}")


def load_with_pseudo_labels(base_dataset_name, pseudo_root):
    """The dicts of a registered dataset merged with the pseudo labels of ``pseudo_root``."""
    return merge_pseudo_labels(
        DatasetCatalog.get(base_dataset_name), load_pseudo_labels(pseudo_root), source=pseudo_root
    )


def register_with_pseudo_labels(name, base_dataset_name, pseudo_root):
    """Register dataset ``name``: ``base_dataset_name`` with the pseudo labels of
    ``pseudo_root`` (:func:`load_with_pseudo_labels`); reads no file.

    The metadata is the base's (its ``tasks`` stay the ground-truth tasks, which evaluators
    score) plus ``pseudo_root``.

    Raises:
        KeyError: ``base_dataset_name`` is not registered.
    """
    if base_dataset_name not in DatasetCatalog.list():
        raise KeyError(f"cannot register {name!r}: its base dataset {base_dataset_name!r} is not "
                       "registered")
    DatasetCatalog.register(
        name, functools.partial(load_with_pseudo_labels, base_dataset_name, pseudo_root)
    )
    metadata = MetadataCatalog.get(base_dataset_name).as_dict()
    metadata.pop("name")
    MetadataCatalog.get(name).set(**metadata, pseudo_root=pseudo_root,
                                  pseudo_base_dataset=base_dataset_name)


def check_pseudo_tasks(dicts, names, tasks, optional=()):
    """Refuse to train a task on ground truth only where pseudo labels were meant to fill it.

    A training set registered with pseudo labels whose root has none of ``task`` (no summary:
    the teacher never ran) would train that task on its ground-truth images alone, without a
    word. Refused when some image of ``dicts`` lacks ``task``, unless ``task`` is in
    ``optional`` (``PSEUDO_LABELS.OPTIONAL_TASKS``).

    Args:
        dicts (list[dict]): the training dicts (merged with what pseudo labels exist).
        names (list[str]): the training sets' names.
        tasks (list[str]): the tasks the model trains.
    """
    for name in names:
        metadata = MetadataCatalog.get(name)
        root = metadata.get("pseudo_root", None)
        if root is None:
            continue
        for task in tasks:
            lacking = sum(task not in d["labeled_tasks"] for d in dicts)
            if task in optional or not lacking or os.path.isfile(summary_path(root, task)):
                continue
            base = metadata.get("pseudo_base_dataset", "<the training set>")
            raise ValueError(
                f"{name}: no {task} pseudo labels under {root} ({summary_path(root, task)} is "
                f"missing) while {lacking} training images lack {task} labels; the {task} head "
                f"would train on ground truth only. Write them with {GENERATOR} --config-file "
                f"<{task} teacher config> --dataset {base} --output {root} MODEL.WEIGHTS "
                f"<{task} teacher weights>, or list {task!r} in PSEUDO_LABELS.OPTIONAL_TASKS")
