"""nuImages masks: run-length encoded instance and surface masks, and the semantic label maps made
from them.

nuImages stores a mask as ``{"size": [H, W], "counts": <base64 of COCO's compressed RLE>}``.
:func:`semantic_label_map` paints one frame's surfaces, then its objects, into an HxW uint8 map of
:data:`~lv_nuimages.categories.SEM_CLASSES` ids; :func:`write_semantic_masks` writes those maps as
the PNGs that the dataset dicts name (``sem_seg_file_name``), which lv_adapter's mapper and
evaluators read like any other label mask.
"""
import base64
import binascii
import os

import numpy as np
from pycocotools import mask as mask_utils
from tqdm import tqdm

from lv_adapter.data.errors import BadSampleError
from lv_adapter.utils.io import write_image
from lv_nuimages.categories import BACKGROUND, IGNORE_LABEL, sem_class_id

__all__ = ["decode_mask", "encode_mask", "semantic_label_map", "write_semantic_masks"]


def encode_mask(binary):
    """An HxW boolean/0-1 array -> nuImages' mask dict (base64 of the compressed RLE)."""
    rle = mask_utils.encode(np.asfortranarray(binary.astype(np.uint8)))
    counts = base64.b64encode(rle["counts"]).decode()
    return {"size": [int(v) for v in rle["size"]], "counts": counts}


def decode_mask(mask, height, width, where):
    """nuImages' mask dict -> HxW bool array; ``where`` (file:token) names it in errors."""
    try:
        size = [int(v) for v in mask["size"]]
        counts = base64.b64decode(mask["counts"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error) as e:
        raise BadSampleError(where, f"mask is not {{'size': [H, W], 'counts': base64}}: {e!r}")
    if size != [height, width]:
        raise BadSampleError(where, f"mask is {size[1]}x{size[0]} (WxH) but its image is "
                                    f"{width}x{height}")
    try:
        return mask_utils.decode({"size": size, "counts": counts}).astype(bool)
    except Exception as e:  # pycocotools raises bare Exceptions / crashes on garbage
        raise BadSampleError(where, f"mask counts cannot be decoded: {e}") from None


def semantic_label_map(frame):
    """The HxW uint8 semantic labels of one frame (a dict of :func:`lv_nuimages.nuimages.frames`).

    Background everywhere, then each surface, then each object, in table order, with its class
    (:func:`~lv_nuimages.categories.sem_class_id`; 255 for categories that are not a class). An
    object without a mask makes its box 255: what lies there is unknown.
    """
    labels = np.full((frame["height"], frame["width"]), BACKGROUND, np.uint8)
    for ann in frame["surfaces"] + frame["objects"]:
        value = sem_class_id(ann["category"])
        if ann["mask"] is None and "bbox" not in ann:
            raise BadSampleError(ann["where"], "a surface annotation without a mask")
        if ann["mask"] is None:
            x1, y1, x2, y2 = (int(round(v)) for v in ann["bbox"])
            labels[y1:y2, x1:x2] = IGNORE_LABEL
            continue
        labels[decode_mask(ann["mask"], frame["height"], frame["width"], ann["where"])] = value
    return labels


def write_semantic_masks(frames, overwrite=False, progress=True):
    """Write the semantic PNG of every frame to its ``sem_seg_file_name`` (atomically).

    Existing files are kept unless ``overwrite``. Returns the number of files written.
    """
    written = 0
    for frame in tqdm(frames, desc="semantic masks", unit="image", disable=not progress):
        path = frame["sem_seg_file_name"]
        if overwrite or not os.path.isfile(path):
            write_image(path, semantic_label_map(frame))
            written += 1
    return written
