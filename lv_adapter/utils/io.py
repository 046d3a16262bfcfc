"""File writing that never leaves a half-written file behind, and a file's identity."""
import contextlib
import hashlib
import json
import os
import secrets

import cv2

# Temporary files of atomic writes are hidden and start with this; a process killed during a
# write leaves one behind (see remove_stale_temporaries).
TEMPORARY_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one;
    if the body raises, the temporary file is removed and ``path`` is untouched. The file gets
    the permissions a plain ``open(path, "w")`` would give (0666 less the umask).
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]  # keep the extension: encoders pick the format from it
    tmp = _create_temporary(folder, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _create_temporary(folder, suffix):
    """Create an empty, uniquely named temporary file in ``folder``; return its path.

    Not ``tempfile.mkstemp``: it creates files with mode 0600 whatever the umask, and the
    rename would hand that mode on to every checkpoint, drawing and export.
    """
    while True:
        tmp = os.path.join(folder, f"{TEMPORARY_PREFIX}{secrets.token_hex(8)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:  # a name already taken: draw another
            continue


def remove_stale_temporaries(folder):
    """Remove the temporary files that killed atomic writes left directly in ``folder``.

    Call it only where no other process writes into ``folder`` at the same time.
    Returns:
        list[str]: the names of the removed files, sorted.
    """
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.startswith(TEMPORARY_PREFIX) and os.path.isfile(path):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
                removed.append(name)
    return removed


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


def file_sha256(path):
    """The hex sha256 of the file ``path`` (read in 1 MiB blocks): a checkpoint's identity."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
