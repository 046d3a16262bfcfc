"""Reading images and label masks, with every check a bad file deserves.

The mapper (training) and the evaluators (ground truth) read files through these functions, so a
missing, corrupt, mis-sized or out-of-range file is reported the same way everywhere: as a
:class:`~lv_adapter.data.errors.BadSampleError` that names the file and the problem.
"""
import os

import cv2
import numpy as np
from detectron2.data import detection_utils as utils
from PIL import UnidentifiedImageError

from lv_adapter.data.errors import BadSampleError
from lv_adapter.tasks import IGNORE_LABEL, get_task

_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"


def read_image(path, image_format="BGR"):
    """Decode an image file into an HxWxC uint8 array in ``image_format``.

    BGR and RGB images are decoded by OpenCV (libjpeg-turbo: about 1.5x faster than PIL on a
    1280x720 JPEG); other formats go through detectron2's reader.
    Raises BadSampleError for a missing, unreadable or truncated file.
    """
    if not os.path.isfile(path):
        raise BadSampleError(path, "image file is missing")
    if image_format not in ("BGR", "RGB"):
        try:
            return utils.read_image(path, format=image_format)
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as e:
            raise BadSampleError(path, f"image cannot be decoded (corrupt or truncated?): {e}")
    image = _decode_color(path)
    return image[:, :, ::-1] if image_format == "RGB" else image


def _decode_color(path):
    with open(path, "rb") as f:
        data = f.read()
    # OpenCV decodes a truncated JPEG into a partly grey image with only a warning: check that
    # the end-of-image marker is there (some encoders pad with zero bytes after it).
    if data[:2] == _JPEG_START and data.rstrip(b"\0")[-2:] != _JPEG_END:
        raise BadSampleError(path, "image cannot be decoded: truncated JPEG (no end marker)")
    if not data:
        raise BadSampleError(path, "image cannot be decoded: the file is empty")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadSampleError(path, "image cannot be decoded (corrupt, truncated or not an image)")
    return image


def check_image_size(dataset_dict, image):
    """Raise BadSampleError when ``image`` (HxWxC) is not the size ``dataset_dict`` records.

    Like detectron2's ``check_image_size``, this adds ``height``/``width`` when they are missing.
    """
    try:
        utils.check_image_size(dataset_dict, image)
    except utils.SizeMismatchError as e:
        raise BadSampleError(dataset_dict["file_name"], str(e)) from None


def read_record_mask(dataset_dict, task, image_shape, num_classes=None):
    """Read and validate the mask of ``task`` (a mask task) that a dataset dict names.

    Args:
        dataset_dict (dict): holds ``sem_seg_file_name`` / ``drivable_file_name`` (and
            ``drivable_legacy``) for the tasks it is labeled for.
        task (str): "semantic" or "drivable".
        image_shape (tuple[int, int]): (H, W) of the image; the mask must have it.
        num_classes (int or None): see :func:`read_label_mask`.

    Returns:
        np.ndarray: HxW uint8 class ids (see :func:`read_label_mask`).
    """
    spec = get_task(task)
    key = spec.label_keys[0]
    if key not in dataset_dict:
        raise BadSampleError(dataset_dict["file_name"], f"labeled for {task} but has no {key!r}")
    legacy = spec.legacy_key is not None and dataset_dict.get(spec.legacy_key, False)
    return read_label_mask(dataset_dict[key], task, image_shape, legacy, num_classes)


def read_label_mask(path, task, image_shape=None, legacy_drivable=False, num_classes=None):
    """Read and validate a label-id mask of ``task`` (a mask task: "semantic", "drivable").

    Args:
        path (str): a single-channel 8-bit PNG of class ids.
        task (str): decides the valid range: ids 0..K-1 of the task's K classes, or 255 (ignore).
        image_shape (tuple[int, int] or None): (H, W) the mask must have, when given.
        legacy_drivable (bool): the mask uses the task's legacy encoding (drivable's 2018 one: 0
            background, 1 direct, 2 alternative) and is remapped by its ``legacy_lut`` to the
            current one (0 direct, 1 alternative, 2 background).
        num_classes (int or None): K, the task's number of classes; None: the task's default
            (BDD100K's) classes. Another dataset passes its own.

    Returns:
        np.ndarray: HxW uint8 class ids in the current encoding, 255 = ignore.
    """
    mask = decode_mask(path)
    if image_shape is not None and mask.shape != tuple(image_shape):
        raise BadSampleError(
            path,
            f"{task} mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but its image is "
            f"{image_shape[1]}x{image_shape[0]}",
        )
    spec = get_task(task)
    _check_mask_values(path, task, mask, num_classes or len(spec.classes))
    if not legacy_drivable:
        return mask
    if spec.legacy_lut is None:
        raise ValueError(f"{task} masks have no legacy encoding to remap ({path})")
    return spec.legacy_lut[mask]


def decode_mask(path):
    """The HxW uint8 array of a single-channel 8-bit PNG; BadSampleError naming ``path`` when
    it is missing, undecodable, multi-channel or not 8-bit (a project's mask task reads its own
    encoding through this)."""
    if not os.path.isfile(path):
        raise BadSampleError(path, "label mask file is missing")
    mask = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise BadSampleError(
            path, "label mask cannot be decoded (corrupt, truncated or not an image)"
        )
    if mask.ndim != 2:
        raise BadSampleError(
            path,
            f"label mask must be single-channel class ids, got {mask.shape[2]} channels "
            "(a colour rendering instead of the id mask?)",
        )
    if mask.dtype != np.uint8:
        raise BadSampleError(path, f"label mask must be 8-bit, got {mask.dtype}")
    return mask


def _check_mask_values(path, task, mask, num_classes):
    bad = (mask >= num_classes) & (mask != IGNORE_LABEL)
    if bad.any():
        values = np.unique(mask[bad]).tolist()
        raise BadSampleError(
            path,
            f"{task} mask holds values {values} outside the valid ids 0..{num_classes - 1} "
            f"(and {IGNORE_LABEL} = ignore)",
        )
