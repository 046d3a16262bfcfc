"""BDD100K's lane-marking masks: one byte per pixel (``labels/lane/masks/{train,val}/<stem>.png``).

    bit  7   6   5           4        3           2 1 0
         0   0   direction   style    background  category

* category (bits 0-2): crosswalk, double other, double white, double yellow, road curb,
  single other, single white, single yellow (ids 0-7);
* background (bit 3): 1 = no lane marking; BDD100K writes background pixels as 255;
* style (bit 4): 0 solid, 1 dashed; direction (bit 5): 0 parallel, 1 vertical (to the lane).

A lane pixel is ``category + 16 * style + 32 * direction``. Any other value but 255 (bits 6-7 set,
or bit 3 set with other bits than 255's) is outside the encoding.

The model sees the 32 (category, style, direction) combinations and background as 33 classes
(:data:`CLASSES`): class ``category + 8 * style + 16 * direction``, background 32.
:func:`to_class_ids` and :func:`to_bytes` convert between the two.
"""
import numpy as np

__all__ = [
    "BACKGROUND",
    "BACKGROUND_CLASS",
    "CATEGORIES",
    "CLASSES",
    "DIRECTIONS",
    "STYLES",
    "SUB_TASKS",
    "decode",
    "encode",
    "invalid_values",
    "to_bytes",
    "to_class_ids",
]

CATEGORIES = (
    "crosswalk",
    "double other",
    "double white",
    "double yellow",
    "road curb",
    "single other",
    "single white",
    "single yellow",
)
STYLES = ("solid", "dashed")
DIRECTIONS = ("parallel", "vertical")
BACKGROUND = 255

_BACKGROUND_BIT = 1 << 3
# The official sub-tasks of the lane benchmark: name -> (bit offset, bit width, value names), in
# the toolkit's order (its averages are over these three).
SUB_TASKS = {
    "direction": (5, 1, DIRECTIONS),
    "style": (4, 1, STYLES),
    "category": (0, 3, CATEGORIES),
}


# Class names in class-id order: "<category> <style> <direction>", then background.
CLASSES = tuple(f"{c} {s} {d}" for d in DIRECTIONS for s in STYLES for c in CATEGORIES) + (
    "background",)
BACKGROUND_CLASS = len(CLASSES) - 1
# A value outside the encoding in the byte -> class table (callers check invalid_values first).
_INVALID = 254


def _byte_to_class():
    """256-entry uint8 table: lane byte -> class id (background 32; invalid bytes 254)."""
    table = np.full(256, _INVALID, dtype=np.uint8)
    table[_CLASS_TO_BYTE[:BACKGROUND_CLASS]] = _LANE_IDS
    table[BACKGROUND] = BACKGROUND_CLASS
    return table


def encode(category, style, direction):
    """The byte of a lane pixel (arrays broadcast): ``category + 16 style + 32 direction``."""
    category, style, direction = (
        np.asarray(v, dtype=np.uint8) for v in (category, style, direction))
    return (category | (style << 4) | (direction << 5)).astype(np.uint8)


def decode(mask):
    """Split a byte mask (HxW uint8) into its fields.

    Returns:
        dict[str, np.ndarray]: ``foreground`` (bool: a lane pixel), and ``category``, ``style``,
        ``direction`` (uint8; meaningful on the foreground only).
    """
    mask = np.asarray(mask, dtype=np.uint8)
    fields = {"foreground": (mask & _BACKGROUND_BIT) == 0}
    for name, (offset, width, _) in SUB_TASKS.items():
        fields[name] = (mask >> offset) & ((1 << width) - 1)
    return fields


def invalid_values(mask):
    """The sorted distinct values of ``mask`` outside the encoding (empty when it is valid)."""
    values = np.unique(np.asarray(mask, dtype=np.uint8))
    lane = (values & 0b11001000) == 0  # bits 6-7 clear, background bit clear
    return [int(v) for v in values[~lane & (values != BACKGROUND)]]


_LANE_IDS = np.arange(BACKGROUND_CLASS)
_CLASS_TO_BYTE = np.append(encode(_LANE_IDS & 7, (_LANE_IDS >> 3) & 1, _LANE_IDS >> 4),
                           np.uint8(BACKGROUND))
_BYTE_TO_CLASS = _byte_to_class()


def to_class_ids(mask):
    """HxW lane bytes (checked with :func:`invalid_values` first) -> HxW uint8 class ids."""
    return _BYTE_TO_CLASS[np.asarray(mask, dtype=np.uint8)]


def to_bytes(class_ids):
    """HxW class ids (0..32) -> HxW uint8 lane bytes, the official encoding."""
    return _CLASS_TO_BYTE[np.asarray(class_ids)]
