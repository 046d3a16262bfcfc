"""A generator of small nuImages-format sample sets from lv_adapter's drawn road scenes.

Writes under ``<root>/nuimages``: the key frames as JPEGs (``samples/CAM_FRONT``), one sweep per
sample (``sweeps/CAM_FRONT``, not annotated, as in nuImages), the ten v1.0 tables of
``v1.0-train`` and ``v1.0-val``, and the semantic masks (``write_semantic_masks``,
the code that prepares the real dataset). Objects come with visible-pixel instance masks;
the road is the driveable surface. The scenes' det_20 categories become nuImages categories
(:data:`CATEGORY_OF`); traffic lights and signs, which nuImages does not annotate, stay
unannotated, and "other person" becomes a wheelchair user, a category with no detection class.
"""
import hashlib
import os

import numpy as np

from lv_adapter.data.sample import JPEG_PARAMS
from lv_adapter.data.scenes import draw_scene
from lv_adapter.data.scenes.canvas import SEM
from lv_adapter.utils.io import write_image, write_json
from lv_nuimages.categories import OBJECT_CATEGORIES, SURFACE_CATEGORIES
from lv_nuimages.masks import encode_mask, write_semantic_masks
from lv_nuimages.nuimages import frames

__all__ = ["CATEGORY_OF", "write_sample_nuimages"]

CATEGORY_OF = {
    "pedestrian": "human.pedestrian.adult",
    "rider": "human.pedestrian.adult",
    "other person": "human.pedestrian.wheelchair",
    "car": "vehicle.car",
    "truck": "vehicle.truck",
    "bus": "vehicle.bus.rigid",
    "train": "vehicle.bus.bendy",
    "other vehicle": "vehicle.construction",
    "trailer": "vehicle.trailer",
    "motorcycle": "vehicle.motorcycle",
    "bicycle": "vehicle.bicycle",
}
CAMERA = "CAM_FRONT"


def token(seed, *parts):
    """A 32-hex-digit token, as nuImages' (deterministic: seed and what it names)."""
    return hashlib.md5("/".join(map(str, (seed,) + parts)).encode()).hexdigest()


def write_sample_nuimages(root, num_images=40, width=320, height=180, seed=0, val_fraction=0.25):
    """Write ``num_images`` drawn scenes as a nuImages v1.0 set under ``<root>/nuimages``.

    The last ``val_fraction`` of them (at least one) form v1.0-val, the rest v1.0-train.
    Returns:
        dict: version -> number of key frames.
    """
    if num_images < 2:
        raise ValueError(f"num_images must be >= 2 (a train and a val image), got {num_images}")
    num_val = max(1, int(round(num_images * val_fraction)))
    first_val = num_images - num_val
    versions = {"v1.0-train": range(first_val), "v1.0-val": range(first_val, num_images)}
    base = os.path.join(root, "nuimages")
    for version, indices in versions.items():
        tables = _empty_tables(seed)
        for index in indices:
            _add_scene(tables, base, seed, index, width, height)
        for name, rows in tables.items():
            write_json(os.path.join(base, version, f"{name}.json"), rows, indent=1)
        write_semantic_masks(frames(root, version), overwrite=True, progress=False)
    return {version: len(indices) for version, indices in versions.items()}


def _empty_tables(seed):
    categories = [{"token": token(seed, "category", name), "name": name, "description": name}
                  for name in OBJECT_CATEGORIES + SURFACE_CATEGORIES]
    return {
        "category": categories,
        "attribute": [],
        "log": [{"token": token(seed, "log"), "logfile": "sample", "vehicle": "sample",
                 "date_captured": "2026-11-26", "location": "drawn"}],
        "sensor": [{"token": token(seed, "sensor"), "channel": CAMERA, "modality": "camera"}],
        "calibrated_sensor": [],
        "ego_pose": [],
        "sample": [],
        "sample_data": [],
        "object_ann": [],
        "surface_ann": [],
    }


def _add_scene(tables, base, seed, index, width, height):
    """Draw scene ``index``; add its sample, key frame, sweep and annotations to ``tables``."""
    scene = draw_scene(np.random.default_rng([seed, index]), height, width)
    sample, key, sweep = (token(seed, kind, index) for kind in ("sample", "key", "sweep"))
    timestamp = 1_600_000_000_000_000 + index * 1_000_000
    bgr = np.ascontiguousarray(scene.image[..., ::-1])
    rows = []
    for frame, folder, stamp, is_key in ((key, "samples", timestamp, True),
                                         (sweep, "sweeps", timestamp - 500_000, False)):
        filename = f"{folder}/{CAMERA}/sample-{seed}-{index:05d}__{CAMERA}__{stamp}.jpg"
        write_image(os.path.join(base, filename), bgr, JPEG_PARAMS)
        rows.append({"token": frame, "sample_token": sample, "ego_pose_token": "",
                     "calibrated_sensor_token": "", "filename": filename, "fileformat": "jpg",
                     "width": width, "height": height, "timestamp": stamp, "is_key_frame": is_key,
                     "prev": sweep if is_key else "", "next": "" if is_key else key})
    tables["sample_data"] += rows
    tables["sample"].append({"token": sample, "timestamp": timestamp,
                             "log_token": token(seed, "log"), "key_camera_token": key})
    categories = {row["name"]: row["token"] for row in tables["category"]}
    road = scene.sem == SEM["road"]
    if road.any():
        tables["surface_ann"].append({
            "token": token(seed, "surface", index), "sample_data_token": key,
            "category_token": categories["flat.driveable_surface"], "mask": encode_mask(road)})
    for k, label in enumerate(scene.labels):
        if label["category"] not in CATEGORY_OF:
            continue  # traffic lights and signs: not annotated in nuImages
        x1, y1, x2, y2 = label["box"]  # inclusive pixel indices -> continuous edges
        tables["object_ann"].append({
            "token": token(seed, "object", index, k), "sample_data_token": key,
            "category_token": categories[CATEGORY_OF[label["category"]]], "attribute_tokens": [],
            "bbox": [x1, y1, x2 + 1, y2 + 1], "mask": encode_mask(scene.owner == label["oid"])})
