"""BDD100K dataset dicts for detection, semantic and drivable-area segmentation.

One image may carry labels for any subset of the three tasks. :func:`load_bdd100k` reads one image
folder plus any of: a ``det_20`` JSON file, a folder of semantic masks, a folder of drivable masks,
and returns one Detectron2 dataset dict per image:

* ``file_name`` (str), ``image_id`` (str, the file stem), ``height``, ``width`` (int);
* ``labeled_tasks`` (list[str]): the tasks this image has labels for, in their registration order
  (``lv_adapter.tasks``);
* ``annotations`` (list[dict], only when detection is labeled): ``bbox`` (XYXY_ABS floats, with the
  exclusive right/bottom edge), ``bbox_mode``, ``category_id`` (0..9), ``iscrowd`` (0 or 1);
* ``sem_seg_file_name`` (str, only when semantic is labeled);
* ``drivable_file_name`` (str, only when drivable is labeled), plus ``drivable_legacy: True`` when
  the mask uses the 2018 encoding (the mapper remaps its values).

The official dataset names are registered by :mod:`lv_adapter.data.datasets.builtin`.
"""
import collections
import functools
import logging
import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from lv_adapter.data.datasets.det_json import read_detection_frames, read_frame_list
from lv_adapter.data.datasets.mask_files import (
    DRIVABLE_ENDINGS,
    IMAGE_EXT,
    LEGACY_DRIVABLE_ENDINGS,
    SEM_SEG_ENDINGS,
    jpeg_names,
    match_masks,
)
from lv_adapter.data.errors import BadSampleError, BadSampleHandler
from lv_adapter.tasks import (
    BUILTIN_TASKS,
    DETECTION,
    DRIVABLE,
    IGNORE_LABEL,
    SEMANTIC,
    get_task,
    task_names,
)

__all__ = [
    "DRIVABLE_ENDINGS",
    "SEM_SEG_ENDINGS",
    "bdd100k_metadata",
    "format_task_counts",
    "load_bdd100k",
    "match_masks",
    "merge_by_image",
    "read_detection_frames",
    "read_frame_list",
    "register_bdd100k",
    "register_loader",
]

logger = logging.getLogger(__name__)

PROJECT_MASK_ENDINGS = (".png",)  # masks of a project's task (``task_masks``): <stem>.png


def bdd100k_metadata(tasks=BUILTIN_TASKS):
    """Class names and colours of ``tasks`` (BDD100K's three by default), for
    ``MetadataCatalog``: each task's classes and colours under its registration's metadata keys.

    Returns:
        dict: ``thing_classes``/``thing_colors`` (10 detection classes), ``stuff_classes``/
        ``stuff_colors`` (19 semantic classes), ``drivable_classes``/``drivable_colors`` (3), a
        project task's own keys, and ``ignore_label`` (255).
    """
    metadata = {"ignore_label": IGNORE_LABEL}
    for task in map(get_task, dict.fromkeys((*BUILTIN_TASKS, *tasks))):
        metadata[task.class_metadata_key] = list(task.classes)
        metadata[task.color_metadata_key] = [list(c) for c in task.colors]
    return metadata


def load_bdd100k(
    image_root,
    det_json=None,
    sem_seg_root=None,
    drivable_root=None,
    legacy_drivable=False,
    on_bad_sample=None,
    task_masks=None,
):
    """Load BDD100K labels of one image folder as Detectron2 dataset dicts (see module doc).

    The images are the union of the frames of ``det_json`` and the masks of both mask folders;
    each must exist in ``image_root``. A bad image or frame is reported as a
    :class:`BadSampleError` through the ``on_bad_sample`` policy ("skip" drops the whole image);
    a missing or malformed label file or folder always raises.

    Args:
        image_root (str): folder of ``<stem>.jpg``.
        det_json (str or None): ``det_20``-style JSON list of frames.
        sem_seg_root (str or None): folder of ``<stem>.png`` (or ``<stem>_train_id.png``).
        drivable_root (str or None): folder of ``<stem>.png``, or ``<stem>_drivable_id.png`` when
            ``legacy_drivable``.
        legacy_drivable (bool): the drivable masks use the 2018 encoding.
        on_bad_sample (str or None): "raise" or "skip"; None uses the global default policy.
        task_masks (dict or None): ``{task: folder of <stem>.png}`` for further mask tasks (a
            project's, registered in :mod:`lv_adapter.tasks`); the file goes under the task's
            first label key, and the task's ``read_label`` reads it.

    Returns:
        list[dict]: one dict per image, sorted by ``image_id``.
    """
    handler = BadSampleHandler(on_bad_sample, what="image")
    if not os.path.isdir(image_root):
        raise BadSampleError(image_root, "image folder not found")
    entries, bad = {}, set()
    if det_json is not None:
        _add_detection(entries, bad, det_json, image_root, handler)
    if sem_seg_root is not None:
        _add_masks(entries, sem_seg_root, SEM_SEG_ENDINGS, SEMANTIC, image_root)
    if drivable_root is not None:
        endings = LEGACY_DRIVABLE_ENDINGS if legacy_drivable else DRIVABLE_ENDINGS
        _add_masks(entries, drivable_root, endings, DRIVABLE, image_root, legacy_drivable)
    for task, folder in (task_masks or {}).items():
        _add_masks(entries, folder, PROJECT_MASK_ENDINGS, task, image_root)
    dicts = []
    for stem in sorted(entries.keys() - bad):
        try:
            dicts.append(_finish_record(stem, entries[stem]))
        except BadSampleError as e:
            handler(e)
    if handler.count:
        logger.warning(f"skipped {handler.count} bad images/frames while loading {image_root}")
    sources = ((DETECTION, det_json), (SEMANTIC, sem_seg_root), (DRIVABLE, drivable_root))
    tasks = [t for t, src in sources if src is not None] + list(task_masks or ())
    logger.info(f"Loaded {len(dicts)} BDD100K images from {image_root} "
                f"(labeled for {format_task_counts(dicts, tasks)})")
    return dicts


def format_task_counts(dicts, tasks=None, key="labeled_tasks"):
    """``"detection 9, semantic 5, drivable 9"``: how many of ``dicts`` are labeled per task
    (name the tasks of each dict's ``key``, e.g. ``pseudo_tasks``); ``tasks``: those to count,
    every registered task by default."""
    counts = collections.Counter(t for d in dicts for t in d.get(key, ()))
    return ", ".join(f"{task} {counts[task]}" for task in tasks or task_names())


def _add_detection(entries, bad, det_json, image_root, handler):
    """Add one entry per frame of ``det_json``; stems of bad frames go to ``bad``."""
    frames, bad_stems = read_detection_frames(det_json, handler)
    bad.update(bad_stems)
    for stem, (name, annotations) in frames.items():
        entries[stem] = {
            "file_name": os.path.join(image_root, name),
            "sources": [f"{det_json} (frame {name!r})"],
            DETECTION: {"annotations": annotations},
        }


def _add_masks(entries, mask_root, endings, task, image_root, legacy=False):
    """Add the masks of ``mask_root`` (see :func:`match_masks`) to ``entries``."""
    spec = get_task(task)
    masks = match_masks(mask_root, endings, task)
    images = jpeg_names(image_root) if set(masks) - set(entries) else {}
    for stem, path in masks.items():
        name = images.get(stem, stem + IMAGE_EXT)  # not there: reading it names the file
        record = entries.setdefault(
            stem, {"file_name": os.path.join(image_root, name), "sources": []}
        )
        record["sources"].append(path)
        record[task] = {spec.label_keys[0]: path, **({spec.legacy_key: True} if legacy else {})}


def _finish_record(stem, entry):
    """Build the dataset dict of one image, reading its size from the image header."""
    file_name = entry["file_name"]
    try:
        with Image.open(file_name) as image:  # reads the header only, not the pixels
            width, height = image.size
    except FileNotFoundError:
        sources = ", ".join(entry["sources"])
        raise BadSampleError(file_name, f"image not found (labeled by {sources})") from None
    except Exception as e:  # PIL raises several types for a corrupt header
        raise BadSampleError(file_name, f"unreadable image header ({e})") from None
    record = {"file_name": file_name, "image_id": stem, "height": height, "width": width}
    record["labeled_tasks"] = [task for task in task_names() if task in entry]
    for task in record["labeled_tasks"]:
        record.update(entry[task])
    return record


def merge_by_image(*dict_lists):
    """Merge per-task dataset dicts of the same image (same ``image_id``) into one dict.

    Args:
        dict_lists (list[dict]): lists of dataset dicts, e.g. detection, drivable, semantic.

    Returns:
        list[dict]: one dict per image, in order of first appearance; ``labeled_tasks`` is the
        union (in registration order) and the label keys of all tasks are combined. ``file_name`` is
        the first list's (the same picture may live under both images/100k and images/10k).

    Raises:
        ValueError: two lists label the same task of one image, or disagree on its size.
    """
    merged = {}
    for dicts in dict_lists:
        for d in dicts:
            image_id = d["image_id"]
            if image_id not in merged:
                merged[image_id] = {**d, "labeled_tasks": list(d["labeled_tasks"])}
            else:
                _merge_into(merged[image_id], d)
    return list(merged.values())


def _merge_into(target, other):
    image_id = target["image_id"]
    both = [t for t in task_names() if t in target["labeled_tasks"] and t in other["labeled_tasks"]]
    if both:
        raise ValueError(f"image {image_id!r} is labeled for {', '.join(both)} in two lists")
    if (target["height"], target["width"]) != (other["height"], other["width"]):
        raise ValueError(
            f"image {image_id!r} has two sizes: {target['file_name']} is "
            f"{target['width']}x{target['height']}, {other['file_name']} is "
            f"{other['width']}x{other['height']}"
        )
    tasks = set(target["labeled_tasks"]) | set(other["labeled_tasks"])
    target["labeled_tasks"] = [task for task in task_names() if task in tasks]
    for task in other["labeled_tasks"]:
        target.update({k: other[k] for k in get_task(task).label_keys if k in other})


def register_loader(name, loader, tasks, **paths):
    """Register ``loader`` (a no-argument callable) as dataset ``name`` with BDD100K metadata.

    Args:
        name (str): dataset name; must not be registered yet.
        loader (callable): returns the list of dataset dicts; called only by ``DatasetCatalog.get``.
        tasks (iterable[str]): the tasks this dataset can label (``metadata.tasks``).
        paths: ``image_root``, ``json_file``, ``sem_seg_root``, ``drivable_root`` (or a project
            task's ``label_source_key``); those that are None are left out of the metadata
            (detectron2's evaluators test for ``json_file``).
    """
    tasks = list(tasks)
    DatasetCatalog.register(name, loader)
    metadata = bdd100k_metadata(tasks)
    metadata.update({k: v for k, v in paths.items() if v is not None})
    metadata["tasks"] = [task for task in task_names() if task in set(tasks)]
    MetadataCatalog.get(name).set(**metadata)


def register_bdd100k(
    name, image_root, det_json=None, sem_seg_root=None, drivable_root=None, legacy_drivable=False
):
    """Register :func:`load_bdd100k` with these arguments as dataset ``name``; reads no file.

    Loading (at ``DatasetCatalog.get``) uses the global bad-sample policy of that time.
    """
    loader = functools.partial(
        load_bdd100k, image_root, det_json, sem_seg_root, drivable_root, legacy_drivable
    )
    sources = {DETECTION: det_json, SEMANTIC: sem_seg_root, DRIVABLE: drivable_root}
    register_loader(
        name,
        loader,
        [task for task, source in sources.items() if source is not None],
        image_root=image_root,
        json_file=det_json,
        sem_seg_root=sem_seg_root,
        drivable_root=drivable_root,
    )
