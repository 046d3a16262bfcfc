"""Which teacher wrote a pseudo-label root, and whether it saw the labels it replaces.

Two checks of ``tools/generate_pseudo_labels.py`` (and so of ``tools/pipeline.py``), both before
a model is built or an image is written:

* **No leak**: a teacher must not have trained on the ground truth it is asked to replace. Its
  training images labeled for its task (``DATASETS.TRAIN`` of the teacher config, and of the
  ``config.yaml`` that ``train_net.py`` wrote beside its weights) must not include any image
  that the run labels. ``--allow-overlap`` lets a user who means it through, and is recorded.
* **One teacher per root**: ``teacher_<task>.json`` records the teacher (the sha256 of its
  weights, its config with the command line's overrides, the threshold) before the first
  image is written. A later run on the same root with another teacher refuses, naming what
  differs, instead of mixing two teachers' labels or taking the old ones as its own.
"""
import json
import os

import yaml
from detectron2.data import DatasetCatalog

from lv_adapter.config import flat_config
from lv_adapter.tasks import get_task
from lv_adapter.utils.io import file_sha256, write_json

__all__ = ["check_no_overlap", "check_same_teacher", "identity_path", "teacher_identity",
           "write_identity"]

# What a teacher predicts depends on its weights (identified by their hash, wherever the file
# is) and on these keys: the model, how test images are read and resized, the test settings,
# and the task's threshold. Training keys (solver, data, augmentation) shaped the weights only.
_IDENTITY_PREFIXES = ("MODEL.", "INPUT.FORMAT", "INPUT.MIN_SIZE_TEST", "INPUT.MAX_SIZE_TEST",
                      "TEST.")
_NOT_IDENTITY = ("MODEL.DEVICE", "MODEL.WEIGHTS", "TEST.EVAL_PERIOD")


def identity_path(root, task):
    get_task(task)  # a ValueError naming the registered tasks
    return os.path.join(root, f"teacher_{task}.json")


def teacher_identity(cfg, task, config_file, overlap=None):
    """What identifies the teacher of a run: a JSON-ready dict.

    Args:
        cfg (CfgNode): the teacher's config, command-line overrides merged.
        task (str): its task.
        config_file (str): the config file given.
        overlap (dict or None): what ``--allow-overlap`` let through (see :func:`check_no_overlap`).
    """
    weights = cfg.MODEL.WEIGHTS
    return {
        "task": task,
        "teacher_config": os.path.abspath(config_file),
        "teacher_weights": weights,
        # a URL (detectron2 downloads it) is its own identity
        "teacher_weights_sha256": None if "://" in weights else file_sha256(weights),
        "config": _identity_keys(cfg, task),
        "allowed_overlap": overlap,
    }


def _identity_keys(cfg, task):
    threshold = f"PSEUDO_LABELS.{get_task(task).threshold_key}"
    flat = {k: v for k, v in flat_config(cfg).items() if k == threshold or (
        k.startswith(_IDENTITY_PREFIXES) and not k.startswith(_NOT_IDENTITY))}
    return json.loads(json.dumps(flat))  # tuples as lists, as they come back from the file


def check_same_teacher(root, identity, has_labels):
    """Refuse to add to (or to call complete) labels of another teacher.

    Args:
        root (str): the pseudo-label root.
        identity (dict): this run's :func:`teacher_identity`.
        has_labels (bool): whether ``root`` holds labels of the task already.
    """
    path = identity_path(root, identity["task"])
    if not os.path.isfile(path):
        if has_labels:
            raise ValueError(
                f"{root} holds {identity['task']} pseudo labels but no record of their teacher "
                f"({path}): they may come from another teacher. Use --force to delete them and "
                "start over, or another --output")
        return
    recorded = _read(path)
    differences = _differences(recorded, identity)
    if differences:
        raise ValueError(
            f"the {identity['task']} pseudo labels in {root} were written by another teacher "
            f"({path}):\n" + "\n".join(f"  - {d}" for d in differences)
            + "\nUse --force to delete them and label again with this teacher, or another "
            "--output")


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read this teacher record ({e}); use --force to "
                         "delete the labels and start over") from None


def _differences(recorded, identity):
    found = []
    same = (recorded.get("teacher_weights_sha256"), recorded.get("teacher_weights")) == (
        identity["teacher_weights_sha256"], identity["teacher_weights"])
    if identity["teacher_weights_sha256"] is not None:  # the same file anywhere is the same
        same = recorded.get("teacher_weights_sha256") == identity["teacher_weights_sha256"]
    if not same:
        found.append(f"teacher weights: recorded {recorded.get('teacher_weights')} (sha256 "
                     f"{str(recorded.get('teacher_weights_sha256'))[:12]}), now "
                     f"{identity['teacher_weights']} (sha256 "
                     f"{str(identity['teacher_weights_sha256'])[:12]})")
    old, new = recorded.get("config", {}), identity["config"]
    # Keys only one detectron2 version has do not count: the same teacher may run under both.
    for key in sorted(old.keys() & new.keys()):
        if old[key] != new[key]:
            found.append(f"{key}: recorded {old[key]!r}, now {new[key]!r}")
    return found


def write_identity(root, identity):
    """Record the teacher (atomically) before the first label is written."""
    write_json(identity_path(root, identity["task"]), identity, indent=2)


def check_no_overlap(cfg, task, records, dataset, allow_overlap):
    """Refuse a teacher that trained on ground truth of ``task`` for images it is to label.

    Args:
        cfg (CfgNode): the teacher's config (its DATASETS.TRAIN and MODEL.WEIGHTS).
        task (str): the teacher's task.
        records (list[dict]): the images to label.
        dataset (str): their dataset's name (for the message).
        allow_overlap (bool): warn-free pass for a user who means it.

    Returns:
        dict or None: ``{"datasets": [...], "images": N}`` when an overlap was allowed.
    """
    sets = _teacher_training_sets(cfg)
    seen = {r["image_id"] for name in sets for r in DatasetCatalog.get(name)
            if task in r.get("labeled_tasks", ())}
    overlap = sorted({r["image_id"] for r in records} & seen)
    if not overlap:
        return None
    if allow_overlap:
        return {"datasets": sets, "images": len(overlap)}
    raise ValueError(
        f"the {task} teacher trained on {task} labels of {len(overlap)} of the {len(records)} "
        f"images of {dataset} it would label (its training sets: {', '.join(sets)}; first: "
        f"{', '.join(overlap[:3])}): its pseudo labels would leak the ground truth they replace. "
        f"Use a teacher trained only on {dataset}'s {task} images (configs/README.md lists one "
        f"per setting), or --allow-overlap if that is what you mean")


def _teacher_training_sets(cfg):
    """DATASETS.TRAIN of the config, and of the run that wrote the weights when its config.yaml
    lies beside them (what the teacher really trained on)."""
    sets = list(cfg.DATASETS.TRAIN)
    written = os.path.join(os.path.dirname(cfg.MODEL.WEIGHTS), "config.yaml")
    if os.path.isfile(written):
        with open(written, encoding="utf-8") as f:
            run = yaml.safe_load(f) or {}
        sets += [name for name in run.get("DATASETS", {}).get("TRAIN", ()) if name not in sets]
    unknown = [name for name in sets if name not in DatasetCatalog]
    if unknown:
        raise KeyError(f"the teacher's training sets {unknown} are not registered: cannot check "
                       "that it never saw the labels it replaces")
    return sets
