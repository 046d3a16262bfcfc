"""Procedural BDD100K-style road scenes: one RGB image and its label maps, painted together.

Everything is painted back to front (painter's algorithm) into a :class:`Canvas`, which keeps for
every pixel the colour, the semantic class (Cityscapes train id), the drivable class and the id of
the thing that painted it. Boxes are read off the things' own pixels and occlusion off the owner
map, so the image, the masks and the boxes cannot disagree.

Geometry (:class:`Road`): a flat road seen from a dashboard camera. A ground point ``u`` metres
right of the road's left edge at depth parameter ``s`` (0 on the horizon, 1 on the bottom row;
``s`` is inversely proportional to the distance) lies on row ``hy + s * (H - hy)``, and one metre
there spans ``ppm * s`` pixels. Sizes are in metres, so every resolution shows the same scene.
Coordinates are in pixels, with pixel centres on integers.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from lv_adapter.data.datasets.categories import (
    DRIVABLE_BACKGROUND,
    IGNORE_LABEL,
    SEM_SEG_CLASSES,
)

SEM = {name: index for index, name in enumerate(SEM_SEG_CLASSES)}
OTHER_VEHICLE = "other vehicle"
DIRECT, ALTERNATIVE = 0, 1
LANE_M = 3.5  # lane width in metres
MIN_OBJECT_PX = 3  # things narrower or shorter than this are neither drawn nor labeled
TIMES_OF_DAY = ("daytime", "dawn/dusk", "night")
WEATHERS = ("clear", "partly cloudy", "overcast")
TRAFFIC_LIGHT_COLORS = ("R", "Y", "G")  # top, middle and bottom lamp
_SHIFT = 4  # fractional bits of the coordinates handed to cv2.fillPoly

# (top, horizon) RGB of the sky per time of day: clear sky first, overcast second.
_SKY = {
    "daytime": (((55, 115, 200), (175, 205, 235)), ((145, 150, 160), (205, 205, 210))),
    "dawn/dusk": (((60, 60, 125), (250, 160, 100)), ((105, 95, 115), (190, 150, 130))),
    "night": (((4, 6, 20), (30, 32, 55)), ((12, 12, 18), (45, 42, 45))),
}
_CLOUD = {"daytime": (240, 240, 245), "dawn/dusk": (240, 185, 165), "night": (40, 40, 55)}
# Per-channel brightness of everything that does not emit light.
_GAIN = {"daytime": (1.0, 1.0, 1.0), "dawn/dusk": (0.85, 0.7, 0.62), "night": (0.3, 0.3, 0.38)}
_CAR = ((232, 232, 232), (25, 25, 28), (150, 152, 158), (170, 20, 25), (25, 50, 140),
        (20, 70, 45), (200, 185, 150), (90, 90, 95), (205, 120, 30))
_TRUCK = ((225, 225, 220), (180, 180, 185), (40, 80, 160), (160, 30, 30), (30, 110, 60))
_BUS = ((235, 190, 20), (190, 30, 35), (30, 90, 170), (225, 228, 230), (40, 140, 80))
_TRAIN = ((190, 195, 200), (170, 35, 40), (40, 70, 150))
_TRACTOR = ((230, 160, 20), (40, 130, 45), (235, 200, 25))
_BUILDING = ((200, 185, 160), (150, 150, 150), (160, 85, 65), (225, 220, 210), (110, 120, 135))
_SKIN = ((240, 200, 170), (200, 150, 110), (140, 95, 60), (90, 60, 40))
_CLOTHES = ((200, 40, 40), (40, 60, 160), (230, 230, 230), (30, 30, 30), (60, 140, 70),
            (230, 180, 40), (130, 60, 140))
_TROUSERS = ((30, 35, 60), (20, 20, 20), (150, 130, 100), (90, 90, 95))
_GLASS = (45, 55, 70)
_DARK = (22, 22, 24)
_TAIL = ((170, 20, 25), (255, 35, 35))  # day, night (lit)
_LAMP_LIT = {"R": (255, 45, 35), "Y": (255, 190, 20), "G": (40, 255, 140)}
_LAMP_OFF = (48, 48, 48)


# ----------------------------------------------------------------------------------------------
# Polygons (Kx2 float arrays of x, y)


def rect(x0, y0, x1, y1):
    """Axis-aligned rectangle with corners (x0, y0) and (x1, y1), as a 4x2 polygon."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def ellipse(cx, cy, rx, ry, n=20):
    """Ellipse centred at (cx, cy) with half-axes rx, ry, as an nx2 polygon."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def segment(p0, p1, width):
    """Thick line from p0 to p1 ((x, y) each) ``width`` pixels wide (at least 1), as 4x2."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / max(np.hypot(*d), 1e-6) * max(width, 1.0) / 2
    return np.array([p0 + n, p1 + n, p1 - n, p0 - n])


def _jitter(rng, colour, amount=15):
    """``colour`` (RGB) with each channel moved by up to ``amount``; tuple of 3 ints."""
    moved = np.asarray(colour) + rng.integers(-amount, amount + 1, 3)
    return tuple(int(c) for c in np.clip(moved, 0, 255))


def _pick(rng, palette, amount=15):
    """A jittered colour drawn from ``palette``."""
    return _jitter(rng, palette[int(rng.integers(len(palette)))], amount)


def _scaled(colour, factor):
    """``colour`` with every channel multiplied by ``factor`` (clipped to 255)."""
    return tuple(int(min(255, c * factor)) for c in colour)


# ----------------------------------------------------------------------------------------------
# Canvas


@dataclass
class Part:
    """One solid-coloured piece of a thing.

    polys: polygons filled one by one; holes: polygons cleared afterwards (rings). color: RGB.
    sem: semantic class, or None for a shadow, which only darkens the image by ``shade`` and
    belongs to no thing. emit: the piece gives light (stays bright at night).
    """

    polys: list
    color: tuple = None
    sem: int = None
    holes: tuple = ()
    emit: bool = False
    shade: float = 1.0


@dataclass
class Thing:
    """A drawn item: its det_20 ``category`` (None: not labeled) and painted (mask, y0, x0)."""

    oid: int
    category: str
    regions: list
    truncated: bool
    crowd: bool = False
    light: str = "NA"


class Canvas:
    """HxWx3 RGB image plus HxW semantic class, drivable class, owner id and 'emits light'."""

    def __init__(self, height, width):
        self.height, self.width = height, width
        self.img = np.zeros((height, width, 3), np.uint8)
        self.sem = np.full((height, width), SEM["sky"], np.uint8)
        self.drv = np.full((height, width), DRIVABLE_BACKGROUND, np.uint8)
        self.owner = np.full((height, width), -1, np.int32)
        self.emit = np.zeros((height, width), bool)
        self.things = []

    def raster(self, polys, holes=(), disjoint=False):
        """Fill ``polys`` minus ``holes`` into a mask over their bounding box, clipped.

        Returns (mask hxw bool, y0, x0), or None when nothing lands in the image. Polygons are
        filled one by one (a single cv2.fillPoly call would apply the even-odd rule to
        overlaps) unless ``disjoint`` says they do not overlap.
        """
        pts = np.concatenate(polys)
        x0, y0 = np.maximum(np.floor(pts.min(0)), 0).astype(int)
        x1 = min(int(np.ceil(pts[:, 0].max())), self.width - 1)
        y1 = min(int(np.ceil(pts[:, 1].max())), self.height - 1)
        if x1 < x0 or y1 < y0:
            return None
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        origin = np.array([x0, y0], float)
        for value, group in ((1, polys), (0, holes)):
            fixed = [np.rint((p - origin) * (1 << _SHIFT)).astype(np.int32) for p in group]
            for batch in [fixed] if disjoint else [[f] for f in fixed]:
                cv2.fillPoly(mask, batch, value, cv2.LINE_8, _SHIFT)
        mask = mask.view(bool)
        return (mask, y0, x0) if mask.any() else None

    def paint(self, region, part, oid=-1):
        """Paint ``part`` over ``region`` (from :meth:`raster`), owned by thing ``oid``.

        Solid parts set colour, semantic class, owner and light flag; nothing standing on the
        ground is drivable, so they also set the drivable class to background.
        """
        mask, y0, x0 = region
        win = (slice(y0, y0 + mask.shape[0]), slice(x0, x0 + mask.shape[1]))
        if part.sem is None:
            img = self.img[win]
            img[mask] = (img[mask] * part.shade).astype(np.uint8)
            return
        self.img[win][mask] = part.color
        self.sem[win][mask] = part.sem
        self.drv[win][mask] = DRIVABLE_BACKGROUND
        self.owner[win][mask] = oid
        self.emit[win][mask] = part.emit

    def paint_polys(self, polys, color, sem, emit=False, disjoint=False):
        """Paint background polygons (no thing owns them)."""
        region = self.raster(polys, disjoint=disjoint)
        if region is not None:
            self.paint(region, Part(polys, color, sem, emit=emit))

    def extent(self, parts):
        """(x0, y0, x1, y1) float extent of the solid ``parts``, clipped to the image."""
        pts = np.concatenate([p for part in parts if part.sem is not None for p in part.polys])
        lo = np.maximum(pts.min(0), 0)
        hi = np.minimum(pts.max(0), [self.width - 1, self.height - 1])
        return (*lo, *hi)

    def draw(self, parts, category=None, crowd=False, light="NA"):
        """Paint a thing made of ``parts`` (back to front); label it when ``category`` is set.

        Returns the Thing, or None when its solid parts span fewer than MIN_OBJECT_PX pixels
        inside the image in either direction; then nothing is drawn.
        """
        x0, y0, x1, y1 = self.extent(parts)
        if min(x1 - x0, y1 - y0) < MIN_OBJECT_PX:
            return None
        pts = np.concatenate([p for part in parts if part.sem is not None for p in part.polys])
        limit = np.array([self.width, self.height]) - 0.5
        truncated = bool((pts < -0.5).any() or (pts > limit).any())
        thing = Thing(len(self.things), category, [], truncated, crowd, light)
        for part in parts:
            region = self.raster(part.polys, part.holes)
            if region is not None:
                self.paint(region, part, thing.oid)
                if part.sem is not None:
                    thing.regions.append(region)
        self.things.append(thing)
        return thing

    def labels(self):
        """Labels of the drawn things that have a category, in drawing order.

        Each is a dict: category, box (x1, y1, x2, y2: inclusive pixel indices of the thing's
        own pixels), occluded (a later thing covers some of them), truncated, crowd, light.
        """
        out = []
        for thing in self.things:
            if thing.category is None or not thing.regions:
                continue
            box, occluded = [np.inf, np.inf, -1, -1], False
            for mask, y0, x0 in thing.regions:
                rows, cols = np.flatnonzero(mask.any(1)) + y0, np.flatnonzero(mask.any(0)) + x0
                box = [min(box[0], cols[0]), min(box[1], rows[0]),
                       max(box[2], cols[-1]), max(box[3], rows[-1])]
                win = (slice(y0, y0 + mask.shape[0]), slice(x0, x0 + mask.shape[1]))
                occluded = occluded or bool((self.owner[win][mask] != thing.oid).any())
            out.append({"category": thing.category, "box": tuple(int(v) for v in box),
                        "occluded": occluded, "truncated": thing.truncated,
                        "crowd": thing.crowd, "light": thing.light})
        return out


# ----------------------------------------------------------------------------------------------
# Road geometry and background


class Road:
    """Perspective geometry of the road, its lanes and sidewalks (see the module docstring)."""

    def __init__(self, rng, height, width):
        self.height, self.width = height, width
        self.hy = height * rng.uniform(0.36, 0.5)  # horizon row
        self.vx = width * rng.uniform(0.42, 0.58)  # vanishing point column
        self.lanes = int(rng.integers(2, 5))
        self.ego = int(rng.integers(self.lanes))
        self.ppm = width * rng.uniform(0.42, 0.6) / LANE_M  # pixels per metre on the bottom row
        # Focal length in pixels; it only turns depth into metres ahead (dashes, facades).
        self.focal = width * rng.uniform(0.5, 0.7)
        self.bend = width * rng.uniform(-0.3, 0.3) if rng.random() < 0.6 else 0.0
        ego_centre = width * 0.5 + rng.uniform(-0.4, 0.4) * self.ppm
        self.left0 = ego_centre - (self.ego + 0.5) * LANE_M * self.ppm  # column of u=0 at s=1
        self.right_u = self.lanes * LANE_M
        self.walk = (rng.uniform(2.0, 4.5), rng.uniform(2.0, 4.5))  # sidewalk widths, metres

    def row(self, s):
        """Row of the ground at depth ``s``."""
        return self.hy + s * (self.height - self.hy)

    def s_of_row(self, y):
        """Depth of the ground seen on row ``y`` (<= 0 above the horizon)."""
        return (y - self.hy) / (self.height - self.hy)

    def x(self, u, s):
        """Column of the ground point ``u`` metres right of the road's left edge at depth ``s``."""
        bend = self.bend * np.clip(1 - np.asarray(s), 0, None) ** 2  # 0 from the bottom row on
        return self.vx + (self.left0 + np.asarray(u) * self.ppm - self.vx) * s + bend

    def s_at(self, z):
        """Depth of the ground ``z`` metres ahead."""
        return self.focal / (self.ppm * np.asarray(z, float))

    def outer_u(self, side):
        """``u`` of the far edge of the sidewalk on ``side`` (-1 left, +1 right)."""
        return -self.walk[0] if side < 0 else self.right_u + self.walk[1]

    def plane(self, u, z0, z1, h0, h1):
        """Corners (..., 4, 2) of upright rectangles on the line ``u``, from ``z0`` to ``z1``
        metres ahead and ``h0`` to ``h1`` metres above the ground (arguments broadcast)."""
        u, z0, z1, h0, h1 = np.broadcast_arrays(*(np.asarray(a, float) for a in
                                                  (u, z0, z1, h0, h1)))
        corners = []
        for z, h in ((z0, h0), (z1, h0), (z1, h1), (z0, h1)):
            s = self.s_at(z)
            corners.append(np.stack([self.x(u, s), self.row(s) - h * self.ppm * s], -1))
        return np.stack(corners, -2)


def paint_sky(canvas, road, rng, time, weather):
    """Vertical gradient above the horizon, with clouds when partly cloudy; it gives light."""
    top, horizon = _SKY[time][weather == "overcast"]
    rows = int(np.floor(road.hy)) + 1
    t = np.linspace(0, 1, rows)[:, None]
    gradient = np.asarray(top) * (1 - t) + np.asarray(horizon) * t
    canvas.img[:rows] = gradient[:, None, :].astype(np.uint8)
    canvas.emit[:rows] = True
    if weather != "partly cloudy":
        return
    for _ in range(int(rng.integers(2, 6))):
        rx = canvas.width * rng.uniform(0.05, 0.15)
        centre = canvas.width * rng.uniform(0, 1), road.hy * rng.uniform(0.1, 0.7)
        cloud = ellipse(*centre, rx, rx * rng.uniform(0.15, 0.35))
        canvas.paint_polys([cloud], _jitter(rng, _CLOUD[time], 8), SEM["sky"], emit=True)


def paint_skyline(canvas, road, rng, city):
    """Distant buildings (``city``) or a distant tree line sitting on the horizon."""
    w, base = canvas.width, road.hy + 1
    if city:
        x, polys = -rng.uniform(0, 0.05) * w, []
        while x < w:
            step = w * rng.uniform(0.03, 0.09)
            polys.append(rect(x, base - canvas.height * rng.uniform(0.02, 0.14), x + step, base))
            x += step
        canvas.paint_polys(polys, _jitter(rng, (125, 130, 142), 10), SEM["building"])
    else:
        xs = np.linspace(0, w - 1, 40)
        tops = base - canvas.height * np.clip(0.03 + np.cumsum(rng.normal(0, 0.006, 40)), 0.01,
                                              0.08)
        band = np.concatenate([np.stack([xs, tops], 1), [[w - 1, base], [0, base]]])
        canvas.paint_polys([band], _jitter(rng, (60, 90, 55), 10), SEM["vegetation"])


def _ground_luts(road, rng, sides):
    """Per ground region: semantic class, drivable class and RGB (regions: see paint_ground)."""
    lanes = road.lanes
    beyond = [(SEM["sidewalk"], (150, 140, 128)) if city else
              (SEM["terrain"], ((100, 135, 55), (150, 140, 90))[int(rng.random() < 0.3)])
              for city in sides]
    asphalt = _jitter(rng, (105, 105, 108), 20)
    walk = _jitter(rng, (165, 160, 152), 15)
    sem = [beyond[0][0], SEM["sidewalk"]] + [SEM["road"]] * lanes + [SEM["sidewalk"],
                                                                    beyond[1][0]]
    drv = ([DRIVABLE_BACKGROUND] * 2 + [DIRECT if i == road.ego else ALTERNATIVE
                                        for i in range(lanes)] + [DRIVABLE_BACKGROUND] * 2)
    rgb = [_jitter(rng, beyond[0][1], 10), walk] + [asphalt] * lanes + [walk,
                                                                        _jitter(rng, beyond[1][1],
                                                                                10)]
    return np.array(sem, np.uint8), np.array(drv, np.uint8), np.array(rgb, np.uint8)


def paint_ground(canvas, road, rng, sides):
    """Road, sidewalks and the ground beyond them, with curbs, tiles, markings and crossings.

    Each pixel below the horizon gets the ``u`` of the ground point it shows; ``u`` then picks
    the region: 0 beyond the left sidewalk, 1 left sidewalk, 2..lanes+1 the lanes, then right
    sidewalk and beyond. Markings are paint: they change neither the semantic class (road) nor
    the drivable class (the lane they lie in).
    """
    top = int(np.floor(road.hy)) + 1
    s = road.s_of_row(np.arange(top, canvas.height, dtype=np.float32))[:, None]
    cols = np.arange(canvas.width, dtype=np.float32)[None]
    shift = road.bend * np.clip(1 - s, 0, None) ** 2 + road.vx
    u = ((cols - shift) / s + road.vx - road.left0) / road.ppm
    breaks = np.array([road.outer_u(-1), *(LANE_M * np.arange(road.lanes + 1)),
                       road.outer_u(1)], np.float32)
    region = np.searchsorted(breaks, u, side="right")
    sem, drv, rgb = _ground_luts(road, rng, sides)
    canvas.sem[top:], canvas.drv[top:], canvas.img[top:] = sem[region], drv[region], rgb[region]
    img = canvas.img[top:]
    z = road.focal / (road.ppm * s)  # metres ahead of each row
    walk = (region == 1) | (region == road.lanes + 2)
    curb = walk & ((np.abs(u) < 0.2) | (np.abs(u - road.right_u) < 0.2))
    img[curb] = _scaled(rgb[1], 1.15)
    img[walk & ~curb & (z % 1.6 < 0.1)] = _scaled(rgb[1], 0.85)  # paving joints
    _paint_markings(img, road, rng, u, s, z)


def _paint_markings(img, road, rng, u, s, z):
    """Dashed lines between lanes, solid edge lines and sometimes a zebra crossing (image only).

    u, s, z: per pixel/row ground coordinates of the rows below the horizon (see paint_ground).
    """
    half = np.maximum(0.08, 0.6 / (road.ppm * s))  # half line width in metres, >= ~1 pixel
    near = s > 0.03  # rows closer to the horizon would alias into noise
    dashes = ((z / rng.uniform(8, 12) + rng.uniform()) % 1 < 0.4) & near
    white, yellow = (235, 235, 228), (230, 190, 40)
    left_colour = yellow if rng.random() < 0.4 else white
    lines = [(0.3, left_colour, near), (road.right_u - 0.3, white, near)]
    lines += [(LANE_M * i, white, dashes) for i in range(1, road.lanes)]
    for position, colour, on in lines:
        img[(np.abs(u - position) < half) & on] = colour
    if rng.random() < 0.25:
        start = rng.uniform(8, 30)
        stripes = (u % 1.0 < 0.5) & (u > 0) & (u < road.right_u)
        img[stripes & (z > start) & (z < start + 3.5)] = white


def paint_buildings(canvas, road, rng, side, time):
    """Facades along the far edge of the sidewalk on ``side``, with windows; gaps between."""
    u = road.outer_u(side) + side * rng.uniform(0.0, 1.5)
    z = road.focal / (road.ppm * 1.5)  # start below the bottom row
    while z < 300:
        if rng.random() < 0.3:
            z += rng.uniform(3, 10)
        length, height = rng.uniform(8, 30), rng.uniform(6, 30)
        wall = road.plane(u, z, z + length, 0, height)
        canvas.paint_polys([wall], _pick(rng, _BUILDING, 12), SEM["building"])
        _paint_windows(canvas, road, rng, (u, z, length, height), time)
        z += length


def _paint_windows(canvas, road, rng, facade, time):
    """A grid of windows on ``facade`` = (u, z, length, height); some are lit at night."""
    u, z, length, height = facade
    width, tall = rng.uniform(1.0, 1.8), rng.uniform(1.2, 1.8)
    starts, floors = np.meshgrid(z + np.arange(1.0, length - width - 0.5, rng.uniform(2.4, 3.6)),
                                 np.arange(1.2, height - tall - 0.3, 3.2))
    starts, floors = starts.ravel(), floors.ravel()
    visible = tall * road.ppm * road.s_at(starts + width) >= 2.0  # at least 2 pixels tall
    if not visible.any():
        return
    quads = road.plane(u, starts[visible], starts[visible] + width, floors[visible],
                       floors[visible] + tall)
    lit = rng.random(len(quads)) < (0.35 if time == "night" else 0.0)
    glass = _jitter(rng, _GLASS, 12)
    for chosen, colour, emit in ((~lit, glass, False), (lit, (255, 215, 140), True)):
        if chosen.any():
            canvas.paint_polys(list(quads[chosen]), colour, SEM["building"], emit, disjoint=True)


def paint_greenery(canvas, road, rng, side):
    """A band of trees set back from the sidewalk on ``side``; grass (terrain) lies before it."""
    u = road.outer_u(side) + side * rng.uniform(2, 12)
    z = np.geomspace(road.focal / (road.ppm * 1.5), 400, 80)
    height = np.clip(rng.uniform(4, 9) + np.cumsum(rng.normal(0, 0.7, len(z))), 2.5, 14)
    s = road.s_at(z)
    top = np.stack([road.x(u, s), road.row(s) - height * road.ppm * s], 1)
    bottom = np.stack([road.x(u, s), road.row(s)], 1)
    band = np.concatenate([top, bottom[::-1]])
    canvas.paint_polys([band], _jitter(rng, (55, 100, 45), 15), SEM["vegetation"])


def paint_barrier(canvas, road, rng, side):
    """A wall or a fence (posts and two rails, see-through) on the far edge of a sidewalk."""
    u, z0 = road.outer_u(side), road.focal / (road.ppm * 1.5)
    z1, height = z0 + rng.uniform(20, 150), rng.uniform(0.8, 2.2)
    if rng.random() < 0.5:
        canvas.paint_polys([road.plane(u, z0, z1, 0, height)], _jitter(rng, (165, 160, 150)),
                           SEM["wall"])
        return
    posts = np.arange(z0, z1, rng.uniform(1.5, 3.0))
    polys = list(road.plane(u, posts, posts + 0.12, 0, height))
    polys += list(road.plane(u, z0, z1, [height * 0.35, height - 0.1],
                             [height * 0.35 + 0.08, height]))
    canvas.paint_polys(polys, _jitter(rng, (150, 125, 100), 20), SEM["fence"])
