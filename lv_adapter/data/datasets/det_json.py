"""Reading BDD100K detection labels: a ``det_20``-style JSON list of frames, each with ``name``
and ``labels`` (``category``, ``box2d`` with inclusive pixel corners, ``attributes.crowd``), into
Detectron2 annotations (``bbox`` XYXY_ABS, ``bbox_mode``, ``category_id``, ``iscrowd``, and
``score`` for pseudo labels), with the category names of every release mapped to the det_20
classes. Every problem names the file and the frame."""
import json
import os

from detectron2.structures import BoxMode

from lv_adapter.data.errors import BadSampleError
from lv_adapter.tasks.detection import DET_CLASSES

# Other names for the same classes: the 2018 release (bdd100k_labels_images_*.json) and the
# official toolkit's det config (name_mapping).
LEGACY_DET_NAMES = {
    "person": "pedestrian",
    "bike": "bicycle",
    "motor": "motorcycle",
    "caravan": "car",
    "van": "car",
}

# Boxes of these categories are ignore regions (COCO iscrowd=1) of the class they map to, as in
# the official toolkit's det config (ignore_mapping): neither training targets nor false
# positives at evaluation. Any box whose attributes say ``crowd`` is an ignore region too.
IGNORED_DET_CATEGORIES = {
    "other person": "pedestrian",
    "other vehicle": "car",
    "trailer": "truck",
}

# Polygon-only categories of the 2018 label files; they carry no box and are not detection labels.
NON_BOX_CATEGORIES = ("drivable area", "lane")


def read_detection_frames(det_json, handler, with_scores=False):
    """Read the frames of a ``det_20``-style JSON file into Detectron2 annotations.

    Args:
        det_json (str): the JSON list of frames.
        handler (BadSampleHandler): decides whether a bad frame raises or is skipped.
        with_scores (bool): every label must carry a ``score`` in [0, 1] (pseudo labels), which
            each annotation keeps as ``score``.

    Returns:
        tuple[dict, set]: image stem -> ``(frame name, annotations)`` of the good frames, in
        file order; the stems of the skipped frames (None for a frame without a name).
        A missing or malformed file raises BadSampleError whatever the policy.
    """
    frames, bad = {}, set()
    for index, frame in enumerate(read_frame_list(det_json)):
        name = frame.get("name") if isinstance(frame, dict) else None
        stem = os.path.splitext(os.path.basename(name))[0] if isinstance(name, str) else None
        try:
            if not stem:
                raise BadSampleError(det_json, f"frame {index} has no 'name'")
            if stem in frames:
                raise BadSampleError(det_json, f"frame {name!r} appears twice")
            annotations = _frame_annotations(frame, det_json, with_scores)
        except BadSampleError as e:
            handler(e)
            bad.add(stem)
            continue
        frames[stem] = (name, annotations)
    return frames, bad


def read_frame_list(path):
    """Read a JSON file that must hold a list; any problem with the file raises."""
    if not os.path.isfile(path):
        raise BadSampleError(path, "detection label file not found")
    with open(path, encoding="utf-8") as f:
        try:
            frames = json.load(f)
        except json.JSONDecodeError as e:
            raise BadSampleError(
                path, f"malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}"
            ) from e
        except UnicodeDecodeError as e:
            raise BadSampleError(path, f"not a UTF-8 text file ({e})") from e
    if not isinstance(frames, list):
        raise BadSampleError(path, f"expected a list of frames, got a JSON {type(frames).__name__}")
    return frames


def _frame_annotations(frame, det_json, with_scores=False):
    """Detectron2 annotations of one frame; ``labels`` missing or null means zero objects."""
    labels = frame.get("labels") or []
    where = f"frame {frame['name']!r}"
    if not isinstance(labels, list):
        raise BadSampleError(det_json, f"{where}: 'labels' is not a list")
    annotations = []
    for label in labels:
        if not isinstance(label, dict):
            raise BadSampleError(det_json, f"{where}: a label is not a JSON object")
        category = label.get("category")
        if category in NON_BOX_CATEGORIES:
            continue  # 2018 polygon labels (drivable area, lane): not detection labels
        what = f"{where}, label {label.get('id')!r} ({category!r})"
        try:
            category_id, is_ignore = det_category_id(category)
        except KeyError:
            raise BadSampleError(det_json, f"{what}: unknown category") from None
        crowd = bool((label.get("attributes") or {}).get("crowd", False))
        annotation = {
            "bbox": _box(label.get("box2d"), det_json, what),
            "bbox_mode": BoxMode.XYXY_ABS,
            "category_id": category_id,
            "iscrowd": int(crowd or is_ignore),
        }
        if with_scores:
            annotation["score"] = _score(label.get("score"), det_json, what)
        annotations.append(annotation)
    return annotations


def _score(score, det_json, what):
    """A pseudo label's confidence: a number in [0, 1]."""
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 1:
        raise BadSampleError(det_json, f"{what}: 'score' must be a number in [0, 1], got {score!r}")
    return float(score)


def _box(box2d, det_json, what):
    """Convert an inclusive-pixel ``box2d`` to a continuous XYXY box ``[x1, y1, x2+1, y2+1]``."""
    if box2d is None:
        raise BadSampleError(det_json, f"{what}: label has no box2d")
    try:
        x1, y1, x2, y2 = (float(box2d[k]) for k in ("x1", "y1", "x2", "y2"))
    except (KeyError, TypeError, ValueError):
        raise BadSampleError(det_json, f"{what}: malformed box2d {box2d!r}") from None
    if x2 < x1 or y2 < y1:
        raise BadSampleError(det_json, f"{what}: box2d has x2 < x1 or y2 < y1: {box2d!r}")
    # BDD100K's x2/y2 are the last pixel inside the box; detectron2's XYXY_ABS edge is one past it.
    return [x1, y1, x2 + 1.0, y2 + 1.0]


def det_category_id(name):
    """Map a BDD100K detection category name to ``(category_id, is_ignore_region)``.

    ``category_id`` is the contiguous id 0..9 in :data:`DET_CLASSES` order; legacy names are
    accepted. Raises KeyError naming the category when it is unknown.
    """
    if name in IGNORED_DET_CATEGORIES:
        return DET_CLASSES.index(IGNORED_DET_CATEGORIES[name]), True
    name = LEGACY_DET_NAMES.get(name, name)
    if name not in DET_CLASSES:
        known = DET_CLASSES + tuple(LEGACY_DET_NAMES) + tuple(IGNORED_DET_CATEGORIES)
        raise KeyError(f"unknown detection category {name!r}; known: {', '.join(known)}")
    return DET_CLASSES.index(name), False
