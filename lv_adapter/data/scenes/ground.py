"""The ground: lanes, sidewalks and what lies beyond them, with curbs, paving, markings, stop
lines and zebra crossings.

Writes the image, the semantic map (road, sidewalk, terrain) and the drivable map (the ego lane
direct, the other lanes alternative, everything else background) through
:meth:`~.canvas.Canvas.fill`; the details (curbs, joints, markings, crossings) are paint only and
change neither label map: a marking belongs to the lane it lies in.

The details also write the canvas's lane-marking map (``Canvas.marking``, HxW uint8): on every
pixel a marking paints, its kind ``k`` (``MARKINGS[k - 1]``, BDD100K lane attributes); 0 where
no marking is painted, paving joints included. Curbs count as markings ("road curb").
"""
import numpy as np

from lv_adapter.data.scenes.canvas import SEM
from lv_adapter.data.scenes.palette import jitter, pick, scaled
from lv_adapter.data.scenes.road import LANE_M
from lv_adapter.tasks.drivable import DRIVABLE_BACKGROUND

DIRECT, ALTERNATIVE = 0, 1  # drivable classes of the ego lane and of the other lanes
_WHITE, _YELLOW = (235, 235, 228), (230, 190, 40)  # marking paint

# The kinds of marking the scenes paint, as BDD100K lane attributes (category, style, direction);
# value k >= 1 of the marking map is MARKINGS[k - 1]. "vertical" runs across the road.
MARKINGS = (
    ("single white", "solid", "parallel"),  # edge lines
    ("single yellow", "solid", "parallel"),  # the left edge line, when yellow
    ("single white", "dashed", "parallel"),  # lines between lanes
    ("double yellow", "solid", "parallel"),  # sometimes the lane boundary nearest the middle
    ("double white", "solid", "parallel"),  # ditto
    ("road curb", "solid", "parallel"),  # the curbs along both road edges
    ("crosswalk", "solid", "vertical"),  # zebra stripes
    ("single white", "solid", "vertical"),  # stop lines
)
(_EDGE_WHITE, _EDGE_YELLOW, _DASHED, _DOUBLE_YELLOW, _DOUBLE_WHITE, _CURB, _ZEBRA,
 _STOP) = range(1, len(MARKINGS) + 1)


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
    _paint_details(canvas, road, rng, rows, s, regions[1][4])


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


def _spans(canvas, rows, lo, hi, colour, mark=0):
    """Paint columns ceil(lo[i])..floor(hi[i]) (clipped) of row rows[i] of the canvas's image
    (rows, lo, hi: 1-D arrays of one length); when ``mark`` (a marking kind, >= 1) is set, write
    it to the same pixels of the marking map."""
    start = np.maximum(np.ceil(lo), 0).astype(np.int64)
    limit = canvas.width - 1
    count = np.maximum(np.minimum(np.floor(hi), limit).astype(np.int64) - start + 1, 0)
    total = int(count.sum())
    if total:
        first = np.cumsum(count) - count  # index of each row's first pixel in the flat list
        pixels = np.repeat(rows, count), np.repeat(start - first, count) + np.arange(total)
        canvas.img[pixels] = colour
        if mark:
            canvas.marking[pixels] = mark


def _band_painter(canvas, road, rows, s):
    """``band(lo, hi, colour, on, mark=0)``: paint the ground between u = lo and u = hi (metres,
    numbers or per-row arrays) on the rows selected by the boolean array ``on``; image only, and
    the marking map where ``mark`` (a marking kind) is set.

    rows: the image rows below the horizon; s: their depths (both 1-D, one length).
    """
    def band(lo, hi, colour, on, mark=0):
        lo, hi = np.broadcast_to(lo, s.shape)[on], np.broadcast_to(hi, s.shape)[on]
        _spans(canvas, rows[on], road.x(lo, s[on]), road.x(hi, s[on]), colour, mark)
    return band


def _own_rng(road):
    """A generator for the choices added after the scenes' draw sequence was fixed (double
    lines, stop lines). Seeded from what the road drew, so a scene stays reproducible, and
    separate from the scene's generator, whose draws decide every later placement."""
    return np.random.default_rng([int(road.hy * 1e6), int(road.vx * 1e6), road.lanes, road.ego])


def _paint_details(canvas, road, rng, rows, s, walk_colour):
    """Curbs, paving joints, lane markings and sometimes a zebra crossing with a stop line;
    image and marking map only.

    rows: the image rows below the horizon; s: their depths; walk_colour: sidewalk RGB.
    """
    z = road.z_at(s)  # metres ahead of each row
    band = _band_painter(canvas, road, rows, s)
    own = _own_rng(road)
    _paint_curbs(band, road, z, walk_colour)
    _paint_lane_lines(band, road, rng, s, z, _middle_line(own))
    _paint_crossing(band, road, rng, z, own)


def _paint_curbs(band, road, z, walk_colour):
    """Darker paving joints across both sidewalks and lighter curbs along both road edges."""
    every, joints = np.ones_like(z, bool), z % 1.6 < 0.1
    for lo, hi in ((road.outer_u(-1), -0.2), (road.right_u + 0.2, road.outer_u(1))):
        band(lo, hi, scaled(walk_colour, 0.85), joints)
    for lo, hi in ((-0.2, 0.0), (road.right_u, road.right_u + 0.2)):
        band(lo, hi, scaled(walk_colour, 1.15), every, _CURB)


def _middle_line(own):
    """The kind of the lane boundary nearest the road's middle: sometimes a double yellow or a
    double white solid line, else dashed like the others (every road has >= 2 lanes). Draws
    from ``own`` only."""
    draw = own.random()
    return _DOUBLE_YELLOW if draw < 0.35 else _DOUBLE_WHITE if draw < 0.5 else _DASHED


def _paint_lane_lines(band, road, rng, s, z, middle):
    """Solid edge lines (the left one sometimes yellow) and dashed lines between the lanes; the
    boundary nearest the middle is of kind ``middle`` (dashed or a double solid line)."""
    half = np.maximum(0.08, 0.6 / (road.ppm * s))  # half line width in metres, >= ~1 pixel
    near = s > 0.03  # rows closer to the horizon would alias into noise
    dashes = ((z / rng.uniform(8, 12) + rng.uniform()) % 1 < 0.4) & near
    yellow = rng.random() < 0.4
    lines = [(0.3, _YELLOW if yellow else _WHITE, near, _EDGE_YELLOW if yellow else _EDGE_WHITE),
             (road.right_u - 0.3, _WHITE, near, _EDGE_WHITE)]
    for i in range(1, road.lanes):
        if i == road.lanes // 2 and middle != _DASHED:
            colour = _YELLOW if middle == _DOUBLE_YELLOW else _WHITE
            # Two lines 0.1 m apart; far away they merge into one, as on a photo.
            lines += [(LANE_M * i + side * (0.05 + half), colour, near, middle)
                      for side in (-1, 1)]
        else:
            lines.append((LANE_M * i, _WHITE, dashes, _DASHED))
    for position, colour, on, mark in lines:
        band(position - half, position + half, colour, on, mark)


def _paint_crossing(band, road, rng, z, own):
    """Sometimes (one road in four) a zebra crossing 3.5 m deep across every lane, with a stop
    line 1-2 m before it (drawn from ``own``)."""
    if rng.random() < 0.25:
        start = rng.uniform(8, 30)
        crossing = (z > start) & (z < start + 3.5)
        for u in np.arange(0.25, road.right_u - 0.5, 1.0):
            band(u, u + 0.5, _WHITE, crossing, _ZEBRA)
        _paint_stop_line(band, road, z, start - own.uniform(1, 2))


def _paint_stop_line(band, road, z, end):
    """A stop line 0.4 m deep ending ``end`` metres ahead, from edge line to edge line."""
    band(0.3, road.right_u - 0.3, _WHITE, (z > end - 0.4) & (z < end), _STOP)
