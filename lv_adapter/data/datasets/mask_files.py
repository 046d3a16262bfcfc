"""Finding the label masks of a folder: ``<image stem><ending>`` files (BDD100K's semantic and
drivable masks, and the pseudo masks), matched to their images by stem."""
import logging
import os

from lv_adapter.data.errors import BadSampleError

logger = logging.getLogger(__name__)

# Mask file name = stem + one of these endings. The 2018 releases add an id suffix to the stem.
SEM_SEG_ENDINGS = ("_train_id.png", ".png")
DRIVABLE_ENDINGS = (".png",)
LEGACY_DRIVABLE_ENDINGS = ("_drivable_id.png",)
IMAGE_EXT = ".jpg"  # masks name only a stem; every BDD100K image is a JPEG


def jpeg_names(image_root):
    """Image stem -> file name of the JPEGs of ``image_root``, the extension in any letter case
    (``.jpg``, ``.JPG``, ``.jpeg``): a mask names only the stem of its image."""
    names = {}
    for entry in os.scandir(image_root):
        stem, ext = os.path.splitext(entry.name)
        if ext.lower() in (".jpg", ".jpeg") and (stem not in names or ext == IMAGE_EXT):
            names[stem] = entry.name
    return names


def match_masks(mask_root, endings, task):
    """The masks of ``mask_root``: files ending in one of ``endings``, in any letter case.

    The other files label nothing: a warning names them. A missing folder, or two masks of one
    image, raise BadSampleError.

    Returns:
        dict[str, str]: image stem -> mask path, sorted by file name.
    """
    if not os.path.isdir(mask_root):
        raise BadSampleError(mask_root, f"{task} mask folder not found")
    masks, strays = {}, []
    for entry in sorted(os.scandir(mask_root), key=lambda e: e.name):
        stem = _mask_stem(entry.name, endings)
        if stem is None or not entry.is_file():
            strays.append(entry.name)
            continue
        if stem in masks:
            raise BadSampleError(
                entry.path, f"a second {task} mask of image {stem!r} (first: {masks[stem]})"
            )
        masks[stem] = entry.path
    _warn_about_strays(mask_root, strays, len(masks), endings, task)
    return masks


def _mask_stem(file_name, endings):
    """The image stem a mask file name gives, or None; ``.PNG`` counts as ``.png``."""
    lower = file_name.lower()
    ending = next((end for end in endings if lower.endswith(end) and len(lower) > len(end)), None)
    return None if ending is None else file_name[: -len(ending)]


def _warn_about_strays(mask_root, strays, num_masks, endings, task):
    # Stray names in a mask folder are how a task silently loses its labels (masks renamed,
    # colour renderings instead of ids): say what was found and which names count.
    expected = " or ".join(f"<image stem>{end}" for end in endings)
    if strays:
        more = f" (and {len(strays) - 5} more)" if len(strays) > 5 else ""
        shown = ", ".join(strays[:5]) + more
        count = "1 file" if len(strays) == 1 else f"{len(strays)} files"
        verb = "matches" if len(strays) == 1 else "match"
        logger.warning(f"{count} in {mask_root} {verb} no expected mask name ({expected}): {shown}")
    if num_masks == 0:
        logger.warning(f"no {task} mask in {mask_root} (expected file names: {expected})")
