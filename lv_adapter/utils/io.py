"""File writing that never leaves a half-written file behind."""
import contextlib
import json
import os
import tempfile

import cv2


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one;
    if the body raises, the temporary file is removed and ``path`` is untouched.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]  # keep the extension: encoders pick the format from it
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_json(path, obj, **kwargs):
    """Write ``obj`` as JSON to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, **kwargs)


def write_image(path, array, params=()):
    """Write an image array (HxW or HxWx3 BGR, uint8) with OpenCV, atomically.

    The format follows the extension of ``path`` (.png, .jpg, ...).
    """
    with atomic_path(path) as tmp:
        if not cv2.imwrite(tmp, array, list(params)):
            raise OSError(f"could not encode an image of shape {array.shape} to {path}")
