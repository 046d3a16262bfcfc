"""The ground: lanes, sidewalks and what lies beyond them, with curbs, paving, markings and
zebra crossings.

Writes the image, the semantic map (road, sidewalk, terrain) and the drivable map (the ego lane
direct, the other lanes alternative, everything else background) through
:meth:`~.canvas.Canvas.fill`; the details (curbs, joints, markings, crossings) are paint only and
change neither label map: a marking belongs to the lane it lies in.
"""
import numpy as np

from lv_adapter.data.scenes.canvas import SEM
from lv_adapter.data.scenes.palette import jitter, pick, scaled
from lv_adapter.data.scenes.road import LANE_M
from lv_adapter.tasks.drivable import DRIVABLE_BACKGROUND

DIRECT, ALTERNATIVE = 0, 1  # drivable classes of the ego lane and of the other lanes
_WHITE, _YELLOW = (235, 235, 228), (230, 190, 40)  # marking paint


def paint_ground(canvas, road, rng, sides):
    """Road, sidewalks and the ground beyond them, with curbs, paving, markings and crossings.

    ``sides``: (left is city, right is city). Each region (see _ground_regions) is a polygon
    with one vertex per row on each of its two boundary curves.
    """
    rows = np.arange(int(np.floor(road.hy)) + 1, canvas.height)
    s = road.s_of_row(rows)
    regions = _ground_regions(road, rng, sides)
    for lo, hi, sem, drv, rgb in regions:
        # Clipping a vertex to just outside the image changes nothing inside it: every row
        # has its own vertices.
        left = np.clip(road.x(lo, s), -2, canvas.width + 1)
        right = np.clip(road.x(hi, s), -2, canvas.width + 1)
        outline = np.concatenate([np.stack([left, rows], 1), np.stack([right, rows], 1)[::-1]])
        canvas.fill([outline], rgb, sem, drv)
    _paint_details(canvas.img, road, rng, rows, s, regions[1][4])


def _ground_regions(road, rng, sides):
    """The ground's regions left to right: (u from, u to, semantic class, drivable class, RGB).

    Beyond the left sidewalk, the left sidewalk, each lane, the right sidewalk, and beyond it;
    beyond a sidewalk lies paving in a city and grass (terrain) elsewhere.
    """
    asphalt, walk = jitter(rng, (105, 105, 108), 20), jitter(rng, (165, 160, 152), 15)
    beyond = [(SEM["sidewalk"], jitter(rng, (150, 140, 128), 10)) if city else
              (SEM["terrain"], pick(rng, ((100, 135, 55), (150, 140, 90)), 10)) for city in sides]
    far = 1e4  # metres: "to the image border"
    regions = [(-far, road.outer_u(-1), *beyond[0]), (road.outer_u(-1), 0.0, SEM["sidewalk"], walk)]
    regions += [(LANE_M * i, LANE_M * (i + 1), SEM["road"], asphalt) for i in range(road.lanes)]
    regions += [(road.right_u, road.outer_u(1), SEM["sidewalk"], walk), (road.outer_u(1), far,
                                                                         *beyond[1])]
    drv = [DRIVABLE_BACKGROUND] * 2 + [DIRECT if i == road.ego else ALTERNATIVE
                                       for i in range(road.lanes)] + [DRIVABLE_BACKGROUND] * 2
    return [(lo, hi, sem, d, rgb) for (lo, hi, sem, rgb), d in zip(regions, drv)]


def _spans(img, rows, lo, hi, colour):
    """Paint columns ceil(lo[i])..floor(hi[i]) (clipped) of row rows[i] of ``img``."""
    start = np.maximum(np.ceil(lo), 0).astype(np.int64)
    count = np.maximum(np.minimum(np.floor(hi), img.shape[1] - 1).astype(np.int64) - start + 1, 0)
    total = int(count.sum())
    if total:
        first = np.cumsum(count) - count  # index of each row's first pixel in the flat list
        img[np.repeat(rows, count), np.repeat(start - first, count) + np.arange(total)] = colour


def _band_painter(img, road, rows, s):
    """``band(lo, hi, colour, on)``: paint the ground between u = lo and u = hi (metres, numbers
    or per-row arrays) on the rows selected by the boolean array ``on``, image only.

    rows: the image rows below the horizon; s: their depths.
    """
    def band(lo, hi, colour, on):
        lo, hi = np.broadcast_to(lo, s.shape)[on], np.broadcast_to(hi, s.shape)[on]
        _spans(img, rows[on], road.x(lo, s[on]), road.x(hi, s[on]), colour)
    return band


def _paint_details(img, road, rng, rows, s, walk_colour):
    """Curbs, paving joints, lane markings and sometimes a zebra crossing, image only.

    rows: the image rows below the horizon; s: their depths; walk_colour: sidewalk RGB.
    """
    z = road.z_at(s)  # metres ahead of each row
    band = _band_painter(img, road, rows, s)
    _paint_curbs(band, road, z, walk_colour)
    _paint_lane_lines(band, road, rng, s, z)
    _paint_crossing(band, road, rng, z)


def _paint_curbs(band, road, z, walk_colour):
    """Darker paving joints across both sidewalks and lighter curbs along both road edges."""
    every, joints = np.ones_like(z, bool), z % 1.6 < 0.1
    for lo, hi in ((road.outer_u(-1), -0.2), (road.right_u + 0.2, road.outer_u(1))):
        band(lo, hi, scaled(walk_colour, 0.85), joints)
    for lo, hi in ((-0.2, 0.0), (road.right_u, road.right_u + 0.2)):
        band(lo, hi, scaled(walk_colour, 1.15), every)


def _paint_lane_lines(band, road, rng, s, z):
    """Solid edge lines (the left one sometimes yellow) and dashed lines between the lanes."""
    half = np.maximum(0.08, 0.6 / (road.ppm * s))  # half line width in metres, >= ~1 pixel
    near = s > 0.03  # rows closer to the horizon would alias into noise
    dashes = ((z / rng.uniform(8, 12) + rng.uniform()) % 1 < 0.4) & near
    lines = [(0.3, _YELLOW if rng.random() < 0.4 else _WHITE, near),
             (road.right_u - 0.3, _WHITE, near)]
    lines += [(LANE_M * i, _WHITE, dashes) for i in range(1, road.lanes)]
    for position, colour, on in lines:
        band(position - half, position + half, colour, on)


def _paint_crossing(band, road, rng, z):
    """Sometimes (one road in four) a zebra crossing 3.5 m deep across every lane."""
    if rng.random() < 0.25:
        start = rng.uniform(8, 30)
        crossing = (z > start) & (z < start + 3.5)
        for u in np.arange(0.25, road.right_u - 0.5, 1.0):
            band(u, u + 0.5, _WHITE, crossing)
