"""Reading BDD100K lane-marking PNGs, with the checks every other task's masks get.

The mapper, the evaluator and ``tools/evaluate_lane.py`` read lane masks through
:func:`read_lane_mask`, so a missing, corrupt, mis-sized or out-of-encoding file is reported
the same way everywhere: a :class:`~lv_adapter.data.errors.BadSampleError` naming the file.
"""
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.readers import decode_mask
from lv_lanes.encoding import invalid_values

__all__ = ["read_lane_mask"]


def read_lane_mask(path, shape=None, what="its image"):
    """The HxW uint8 lane bytes of ``path`` (official encoding, :mod:`lv_lanes.encoding`).

    Args:
        path (str): a single-channel 8-bit PNG.
        shape (tuple[int, int] or None): the (H, W) it must have, when given.
        what (str): what ``shape`` is the size of, for the error ("its image", "its ground
            truth").

    Raises:
        BadSampleError: missing, undecodable, not one 8-bit channel, another size, or values
            outside the encoding.
    """
    mask = decode_mask(path)
    if shape is not None and mask.shape != tuple(shape):
        raise BadSampleError(path, f"lane mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but "
                                   f"{what} is {shape[1]}x{shape[0]}")
    bad = invalid_values(mask)
    if bad:
        raise BadSampleError(path, f"values {bad[:10]} are outside BDD100K's lane encoding "
                                   "(lane pixels: category + 16 style + 32 direction; "
                                   "background 255)")
    return mask
