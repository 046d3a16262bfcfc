"""nuImages v1.0 as lv_adapter dataset dicts: detection and semantic segmentation of key frames.

Layout under the datasets root (``DETECTRON2_DATASETS``)::

    nuimages/samples/<camera>/<name>.jpg        key frames (sweeps/ holds the others; unused)
    nuimages/<version>/{category,sample,sample_data,object_ann,surface_ann,...}.json
    nuimages/semantic_masks/<version>/<sample_data token>.png   written by
        projects/NuImages/tools/prepare_semantic_masks.py (from the tables' masks)

:func:`load_nuimages` returns one dict per key frame (``sample.key_camera_token``), the only
annotated frames: ``file_name``, ``image_id`` (the sample_data token), ``height``, ``width``,
``labeled_tasks`` (detection and semantic), ``annotations`` (boxes of the 10 detection classes,
XYXY_ABS as nuImages stores them: ``[xmin, ymin, xmax, ymax]`` continuous edges) and
``sem_seg_file_name``.
"""
import collections
import logging
import math
import os

from detectron2.structures import BoxMode

from lv_adapter.data.errors import BadSampleError
from lv_adapter.tasks import DETECTION, SEMANTIC
from lv_nuimages.categories import OBJECT_CATEGORIES, SURFACE_CATEGORIES, det_class_id
from lv_nuimages.tables import field, read_tables, table_path

__all__ = ["frames", "load_nuimages", "semantic_mask_folder"]

logger = logging.getLogger(__name__)


def semantic_mask_folder(root, version):
    return os.path.join(root, "nuimages", "semantic_masks", version)


def frames(root, version):
    """The key frames of ``<root>/nuimages/<version>`` with their annotations, read and checked.

    Returns:
        list[dict]: per key frame, in sample_data order: ``token``, ``file_name``, ``height``,
        ``width``, ``sem_seg_file_name``, and ``objects`` / ``surfaces``: lists of dicts with
        ``category`` (name), ``bbox`` (objects only), ``mask`` (nuImages mask dict or None) and
        ``where`` (``table file:token``, for errors).
    """
    base = os.path.join(root, "nuimages")
    version_dir = os.path.join(base, version)
    if not os.path.isdir(version_dir):
        raise BadSampleError(version_dir, f"nuImages version folder not found (datasets root "
                                          f"{root!r}: DETECTRON2_DATASETS names the folder that "
                                          "holds nuimages/)")
    tables = read_tables(version_dir)
    categories = _categories(tables["category"], version_dir)
    out = _key_frames(tables, base, version_dir, semantic_mask_folder(root, version))
    for table, kind in (("surface_ann", "surfaces"), ("object_ann", "objects")):
        for row in tables[table]:
            ann = _annotation(row, table, version_dir, categories, out)
            out[row["sample_data_token"]][kind].append(ann)
    return list(out.values())


def _categories(rows, version_dir):
    """category token -> name, every name a known nuImages category."""
    known = OBJECT_CATEGORIES + SURFACE_CATEGORIES
    names = {}
    for row in rows:
        name = field(row, "name", version_dir, "category")
        if name not in known:
            raise BadSampleError(f"{table_path(version_dir, 'category')}:{row['token']}",
                                 f"unknown category {name!r}; nuImages v1.0 has: "
                                 f"{', '.join(known)}")
        names[row["token"]] = name
    return names


def _key_frames(tables, base, version_dir, mask_folder):
    """sample_data token -> frame dict (no annotations yet) of each sample's key camera frame."""
    rows = {row["token"]: row for row in tables["sample_data"]}
    out = {}
    for sample in tables["sample"]:
        token = field(sample, "key_camera_token", version_dir, "sample")
        if token not in rows:
            raise BadSampleError(f"{table_path(version_dir, 'sample')}:{sample['token']}",
                                 f"key_camera_token {token!r} is not in sample_data.json")
        row = rows[token]
        size = [field(row, key, version_dir, "sample_data") for key in ("height", "width")]
        out[token] = {
            "token": token,
            "file_name": os.path.join(base, field(row, "filename", version_dir, "sample_data")),
            "height": int(size[0]),
            "width": int(size[1]),
            "sem_seg_file_name": os.path.join(mask_folder, f"{token}.png"),
            "objects": [],
            "surfaces": [],
        }
    return out


def _annotation(row, table, version_dir, categories, key_frames):
    """One object/surface row as ``{category, bbox, mask, where}``, checked against its frame."""
    where = f"{table_path(version_dir, table)}:{row['token']}"
    frame_token = field(row, "sample_data_token", version_dir, table)
    if frame_token not in key_frames:
        raise BadSampleError(where, f"sample_data_token {frame_token!r} is not the key frame of "
                                    "any sample (only key frames are annotated)")
    category_token = field(row, "category_token", version_dir, table)
    if category_token not in categories:
        raise BadSampleError(where, f"category_token {category_token!r} is not in category.json")
    category = categories[category_token]
    expected = OBJECT_CATEGORIES if table == "object_ann" else SURFACE_CATEGORIES
    if category not in expected:
        raise BadSampleError(where, f"category {category!r} cannot label a {table} row")
    ann = {"category": category, "mask": field(row, "mask", version_dir, table), "where": where}
    if table == "object_ann":
        frame = key_frames[frame_token]
        ann["bbox"] = _box(field(row, "bbox", version_dir, table), frame, where)
    return ann


def _box(bbox, frame, where):
    """``[xmin, ymin, xmax, ymax]``: four finite numbers, a non-empty box inside the image."""
    ok = isinstance(bbox, (list, tuple)) and len(bbox) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox)
    if not ok:
        raise BadSampleError(where, f"bbox must be [xmin, ymin, xmax, ymax] numbers, got {bbox!r}")
    x1, y1, x2, y2 = (float(v) for v in bbox)
    if not (0 <= x1 < x2 <= frame["width"] and 0 <= y1 < y2 <= frame["height"]):
        raise BadSampleError(where, f"bbox {bbox} is empty or leaves the {frame['width']}x"
                                    f"{frame['height']} image")
    return [x1, y1, x2, y2]


def load_nuimages(root, version):
    """Dataset dicts of the key frames of ``<root>/nuimages/<version>`` (module doc).

    Objects of categories that are no detection class are left out of ``annotations`` (and
    counted in the log); the semantic masks ignore their pixels. The semantic PNGs must have been
    written (``tools/prepare_semantic_masks.py``); a missing folder is an error saying so.
    """
    found = frames(root, version)
    folder = semantic_mask_folder(root, version)
    if found and not os.path.isdir(folder):
        raise BadSampleError(folder, "the semantic masks are not prepared: run `python "
                                     "projects/NuImages/tools/prepare_semantic_masks.py --root "
                                     f"{root} --version {version}`")
    left_out = collections.Counter()
    dicts = []
    for frame in found:
        annotations = []
        for obj in frame["objects"]:
            class_id = det_class_id(obj["category"])
            if class_id is None:
                left_out[obj["category"]] += 1
                continue
            annotations.append({"bbox": obj["bbox"], "bbox_mode": BoxMode.XYXY_ABS,
                                "category_id": class_id, "iscrowd": 0})
        dicts.append({
            "file_name": frame["file_name"],
            "image_id": frame["token"],
            "height": frame["height"],
            "width": frame["width"],
            "labeled_tasks": [DETECTION, SEMANTIC],
            "annotations": annotations,
            "sem_seg_file_name": frame["sem_seg_file_name"],
        })
    logger.info(f"nuImages {version}: {len(dicts)} key frames, "
                f"{sum(len(d['annotations']) for d in dicts)} boxes of the detection classes")
    if left_out:
        logger.info("left out of detection (no detection class): " +
                    ", ".join(f"{n} {c}" for c, n in sorted(left_out.items())))
    return dicts
