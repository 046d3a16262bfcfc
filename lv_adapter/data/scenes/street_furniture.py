"""Street furniture as lists of :class:`~.canvas.Part`: traffic lights with their poles and arms,
traffic signs on posts, street lamps, and roadside trees.

Builders take the ground contact point (x, yb) in pixels and ``p`` pixels per metre there, and
return the parts back to front. They paint nothing themselves: :meth:`~.canvas.Canvas.draw`
writes the parts into the image, the semantic map (pole, traffic light, traffic sign,
vegetation), the drivable map (background), the owner map and the light map (the lit lamp of a
traffic light; street lamp heads at night).
"""
import numpy as np

from lv_adapter.data.scenes.canvas import SEM, Part
from lv_adapter.data.scenes.palette import DARK, jitter, scaled
from lv_adapter.data.scenes.shapes import ellipse, rect, segment

TRAFFIC_LIGHT_COLORS = ("R", "Y", "G")  # top, middle and bottom lamp
_LAMP_LIT = {"R": (255, 45, 35), "Y": (255, 190, 20), "G": (40, 255, 140)}
_LAMP_OFF = (48, 48, 48)
_RED, _WHITE, _BLUE, _GREEN = (200, 25, 30), (240, 240, 240), (25, 70, 170), (20, 110, 60)
_TRIANGLE = np.array([[0, -0.5], [0.45, 0.3], [-0.45, 0.3]])  # warning plate, in metres


def traffic_light_parts(rng, x, xh, yb, top, p, colour):
    """(pole parts, light parts): a pole at column ``x`` up to ``top`` metres, an arm out to the
    housing at column ``xh`` when they differ, and a housing with its ``colour`` lamp lit."""
    pole, light = SEM["pole"], SEM["traffic light"]
    poles = [rect(x - 0.1 * p, yb - top * p, x + 0.1 * p, yb)]
    hang = yb - top * p
    if abs(xh - x) > 0.5 * p:
        arm_end = (xh + np.sign(xh - x) * 0.3 * p, hang + 0.07 * p)
        poles.append(segment((x, hang + 0.07 * p), arm_end, 0.14 * p))
        hang += 0.15 * p
    lamps = [ellipse(xh, hang + (0.2 + 0.37 * i) * p, 0.14 * p, 0.14 * p) for i in range(3)]
    lit = TRAFFIC_LIGHT_COLORS.index(colour)
    housing = jitter(rng, DARK, 12)
    return [Part(poles, (120, 120, 125), pole)], [
        Part([rect(xh - 0.23 * p, hang, xh + 0.23 * p, hang + 1.15 * p)], housing, light),
        Part([lamp for i, lamp in enumerate(lamps) if i != lit], _LAMP_OFF, light),
        Part([lamps[lit]], _LAMP_LIT[colour], light, emit=True),
    ]


def _prohibition_plate(cx, cy, p, sign):
    """A red ring around white."""
    return [Part([ellipse(cx, cy, 0.4 * p, 0.4 * p)], _RED, sign),
            Part([ellipse(cx, cy, 0.29 * p, 0.29 * p)], _WHITE, sign)]


def _warning_plate(cx, cy, p, sign):
    """A red triangle around white."""
    return [Part([np.array([cx, cy]) + _TRIANGLE * p], _RED, sign),
            Part([np.array([cx, cy + 0.06 * p]) + _TRIANGLE * 0.62 * p], _WHITE, sign)]


def _mandatory_plate(cx, cy, p, sign):
    """A blue square with a white arrow pointing up."""
    head = np.array([[cx - 0.18 * p, cy - 0.05 * p], [cx + 0.18 * p, cy - 0.05 * p],
                     [cx, cy - 0.27 * p]])
    return [Part([rect(cx - 0.35 * p, cy - 0.35 * p, cx + 0.35 * p, cy + 0.35 * p)], _BLUE, sign),
            Part([segment((cx, cy + 0.25 * p), (cx, cy - 0.05 * p), 0.12 * p), head], _WHITE,
                 sign)]


def _stop_plate(cx, cy, p, sign):
    """A red octagon with a white bar."""
    return [Part([ellipse(cx, cy, 0.4 * p, 0.4 * p, n=8)], _RED, sign),
            Part([rect(cx - 0.28 * p, cy - 0.07 * p, cx + 0.28 * p, cy + 0.07 * p)], _WHITE,
                 sign)]


def _guide_plate(cx, cy, p, sign):
    """A green board with three white lines of text."""
    text = [rect(cx - 0.6 * p, cy + d * p, cx + 0.5 * p, cy + (d + 0.1) * p)
            for d in (-0.3, -0.05, 0.2)]
    return [Part([rect(cx - 0.8 * p, cy - 0.45 * p, cx + 0.8 * p, cy + 0.45 * p)], _GREEN, sign),
            Part(text, _WHITE, sign)]


# Sign plates by kind; the guide board (last) hangs higher than the others.
_PLATES = (_prohibition_plate, _warning_plate, _mandatory_plate, _stop_plate, _guide_plate)


def traffic_sign_parts(rng, x, yb, p):
    """(pole parts, sign parts): a post at column ``x`` and one of five plates on it."""
    sign, kind = SEM["traffic sign"], int(rng.integers(len(_PLATES)))
    height = 3.6 if kind == len(_PLATES) - 1 else rng.uniform(2.0, 2.6)
    cx, cy = x, yb - (height + 0.45) * p
    plate = _PLATES[kind](cx, cy, p, sign)
    post = [Part([rect(x - 0.05 * p, cy, x + 0.05 * p, yb)], (130, 130, 135), SEM["pole"])]
    return post, plate


def street_lamp_parts(x, yb, p, inward, night):
    """A street lamp (all pole): mast, arm reaching ``inward`` (+1 right), head lit at night."""
    top, reach = yb - 7.5 * p, x + inward * 1.6 * p
    return [
        Part([rect(x - 0.08 * p, top, x + 0.08 * p, yb), segment((x, top), (reach, top), 0.1 * p)],
             (110, 112, 118), SEM["pole"]),
        Part([rect(reach - 0.35 * p, top, reach + 0.35 * p, top + 0.16 * p)],
             (255, 240, 200) if night else (70, 70, 75), SEM["pole"], emit=night),
    ]


def tree_parts(rng, x, yb, p):
    """A tree (all vegetation, as in Cityscapes): trunk and a crown of overlapping blobs."""
    trunk, crown = rng.uniform(1.8, 3.2), rng.uniform(1.3, 2.6)
    green, veg = jitter(rng, (60, 110, 45), 20), SEM["vegetation"]
    blobs = [ellipse(x + rng.uniform(-0.8, 0.8) * crown * p,
                     yb - (trunk + crown * rng.uniform(0.6, 1.2)) * p,
                     crown * rng.uniform(0.6, 1.0) * p, crown * rng.uniform(0.6, 1.0) * p)
             for _ in range(4)]
    return [Part([rect(x - 0.15 * p, yb - (trunk + crown) * p, x + 0.15 * p, yb)], (95, 70, 45),
                 veg),
            Part(blobs[:2], scaled(green, 0.8), veg), Part(blobs[2:], green, veg)]
