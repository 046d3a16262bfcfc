"""Official BDD100K dataset names, registered for a datasets root; registration reads no file.

Names (``<root>/bdd100k`` holds the official layout):

* ``bdd100k_det_{train,val}``: images/100k + labels/det_20/det_{split}.json;
* ``bdd100k_drivable_{train,val}``: images/100k + labels/drivable/masks/{split};
* ``bdd100k_sem_seg_{train,val}``: images/10k + labels/sem_seg/masks/{split};
* ``bdd100k_multitask_{train,val}``: the three merged by image; the train set drops the 10k-train
  images that are also 100k-val images (the same picture under the same stem);
* ``bdd100k_{full,disjoint_normal,disjoint_balance}_train``: the paper's training settings
  (:mod:`lv_adapter.data.splits`) over ``bdd100k_multitask_train``;
* ``bdd100k_{full,disjoint_normal,disjoint_balance}_train_pseudo``: each setting with the pseudo
  labels under ``<root>/bdd100k/pseudo/<setting>`` filling the tasks an image lacks
  (:mod:`lv_adapter.data.pseudo_labels`; ground truth wins).

A project's task joins the multi-task sets through :func:`add_task_source` (its labels merged by
image; projects/LaneMarking adds BDD100K's lane marking this way).
"""
import functools
import logging
import os

from detectron2.data import DatasetCatalog, MetadataCatalog

from lv_adapter.data.datasets.bdd100k import (
    load_bdd100k,
    merge_by_image,
    register_loader,
)
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.pseudo_labels import default_pseudo_root, register_with_pseudo_labels
from lv_adapter.data.splits import SETTINGS, apply_split, leaked_stems, load_split, make_split
from lv_adapter.tasks import BUILTIN_TASKS, DETECTION, DRIVABLE, SEMANTIC, get_task

__all__ = [
    "add_task_source",
    "check_datasets_root",
    "load_multitask",
    "load_setting",
    "official_paths",
    "register_all_bdd100k",
    "split_folder",
]

logger = logging.getLogger(__name__)

# A project's tasks whose labels the multi-task sets merge by image: task -> loader(root, split)
# returning that task's dataset dicts (see add_task_source); and the roots registered so far.
_TASK_SOURCES = {}
_ROOTS = []


def official_paths(root, split):
    """Paths of the official layout under ``<root>/bdd100k`` for ``split`` ("train" or "val").

    Returns:
        dict: ``images_100k``, ``images_10k``, ``det_json``, ``drivable_root``, ``sem_seg_root``.
    """
    base = os.path.join(root, "bdd100k")
    return {
        "images_100k": os.path.join(base, "images", "100k", split),
        "images_10k": os.path.join(base, "images", "10k", split),
        "det_json": os.path.join(base, "labels", "det_20", f"det_{split}.json"),
        "drivable_root": os.path.join(base, "labels", "drivable", "masks", split),
        "sem_seg_root": os.path.join(base, "labels", "sem_seg", "masks", split),
    }


def split_folder(root, setting):
    """Folder of the stored image lists of a training setting."""
    return os.path.join(root, "bdd100k", "splits", setting)


def load_multitask(root, split):
    """Detection, drivable and semantic dicts of ``split`` merged by image (see module doc)."""
    p = official_paths(root, split)
    det = load_bdd100k(p["images_100k"], det_json=p["det_json"])
    drivable = load_bdd100k(p["images_100k"], drivable_root=p["drivable_root"])
    sem_seg = load_bdd100k(p["images_10k"], sem_seg_root=p["sem_seg_root"])
    extra = [load(root, split) for load in _TASK_SOURCES.values()]
    dicts = merge_by_image(det, drivable, sem_seg, *extra)
    if split != "train":
        return dicts
    leaked = leaked_stems((d["image_id"] for d in sem_seg), _image_stems(root, "val"))
    logger.info(f"Dropped {len(leaked)} 10k-train images that are also 100k-val images")
    return [d for d in dicts if d["image_id"] not in leaked]


def _image_stems(root, split):
    folder = official_paths(root, split)["images_100k"]
    if not os.path.isdir(folder):
        raise BadSampleError(
            folder, "image folder not found (needed to drop 10k-train images that are 100k-val)"
        )
    return {os.path.splitext(name)[0] for name in os.listdir(folder)}


def load_setting(root, setting):
    """The multi-task train set under a training setting of :data:`SETTINGS`.

    Disjoint settings take their image lists from :func:`split_folder` when it exists, else draw
    them with the setting's sizes and seed 0.
    """
    dicts = load_multitask(root, "train")
    sizes = SETTINGS[setting]
    if sizes is None:
        return dicts
    folder = split_folder(root, setting)
    if os.path.isdir(folder):
        return apply_split(dicts, load_split(folder), source=folder)
    try:
        split = make_split(dicts, sizes, seed=0)
    except ValueError as e:
        raise ValueError(
            f"cannot draw the {setting} split from {root}: {e}. Write smaller lists with "
            f"`python tools/make_splits.py --root {root} --setting {setting} --sizes ...` "
            f"(they go to {folder})"
        ) from e
    return apply_split(dicts, split)


def register_all_bdd100k(root):
    """Register the official names (module doc) for the datasets root ``root``; reads no file.

    The multi-task datasets have two image folders, so their metadata has no ``image_root``.
    """
    _ROOTS.append(root)
    for split in ("train", "val"):
        p = official_paths(root, split)
        _register_task(f"bdd100k_det_{split}", root, p["images_100k"], det_json=p["det_json"])
        _register_task(
            f"bdd100k_drivable_{split}", root, p["images_100k"], drivable_root=p["drivable_root"]
        )
        _register_task(
            f"bdd100k_sem_seg_{split}", root, p["images_10k"], sem_seg_root=p["sem_seg_root"]
        )
    _register_multitask_sets(root)


def _multitask_names():
    """The names of the multi-task sets of one root (and of their pseudo-label variants)."""
    names = [f"bdd100k_multitask_{split}" for split in ("train", "val")]
    return names + [f"bdd100k_{setting}_train{pseudo}" for setting in SETTINGS
                    for pseudo in ("", "_pseudo")]


def _register_multitask_sets(root):
    """Register the multi-task sets of ``root``: both splits, each setting, with pseudo labels."""
    for split in ("train", "val"):
        multitask = functools.partial(load_multitask, root, split)
        _register_multitask(f"bdd100k_multitask_{split}", root, split, multitask)
    for setting in SETTINGS:
        loader = functools.partial(load_setting, root, setting)
        _register_multitask(f"bdd100k_{setting}_train", root, "train", loader)
        register_with_pseudo_labels(
            f"bdd100k_{setting}_train_pseudo", f"bdd100k_{setting}_train",
            default_pseudo_root(root, setting),
        )


def add_task_source(task, loader):
    """Merge the labels of ``task`` (a registered task, a project's) into the multi-task sets.

    Args:
        task (str): the task; its datasets' metadata and evaluators follow its registration.
        loader (callable): ``loader(root, split)`` -> the task's dataset dicts of ``split``
            ("train" or "val") under the datasets root ``root`` (each with ``labeled_tasks``).

    The multi-task sets of every root registered so far are registered again (their loaders and
    metadata now include the task); later roots include it too. Reads no file.
    """
    get_task(task)  # a ValueError naming the registered tasks
    _TASK_SOURCES[task] = loader
    for root in _ROOTS:
        for name in _multitask_names():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        _register_multitask_sets(root)


def check_datasets_root(root):
    """Raise FileNotFoundError when ``<root>/bdd100k`` is missing, saying how to set the root."""
    base = os.path.join(root, "bdd100k")
    if os.path.isdir(base):
        return
    env = os.environ.get("DETECTRON2_DATASETS")
    now = f"it is {env!r}" if env is not None else "it is not set, so ./datasets is used"
    raise FileNotFoundError(
        f"{base} not found (absolute: {os.path.abspath(base)}). The environment variable "
        f"DETECTRON2_DATASETS sets the datasets root that holds bdd100k/ ({now}); point it at "
        f"that folder before starting"
    )


def _checking_root(root, loader):
    """``loader`` preceded by :func:`check_datasets_root`."""
    def load():
        check_datasets_root(root)
        return loader()
    return load


def _register_task(name, root, image_root, det_json=None, sem_seg_root=None, drivable_root=None):
    """Register one task's official dataset (what :func:`register_bdd100k` registers, plus the
    check of the datasets root)."""
    loader = functools.partial(load_bdd100k, image_root, det_json, sem_seg_root, drivable_root)
    sources = {DETECTION: det_json, SEMANTIC: sem_seg_root, DRIVABLE: drivable_root}
    tasks = [task for task, source in sources.items() if source is not None]
    register_loader(
        name, _checking_root(root, loader), tasks, image_root=image_root, json_file=det_json,
        sem_seg_root=sem_seg_root, drivable_root=drivable_root,
    )


def _register_multitask(name, root, split, loader):
    p = official_paths(root, split)
    register_loader(
        name,
        _checking_root(root, loader),
        BUILTIN_TASKS + tuple(_TASK_SOURCES),
        json_file=p["det_json"],
        sem_seg_root=p["sem_seg_root"],
        drivable_root=p["drivable_root"],
    )
