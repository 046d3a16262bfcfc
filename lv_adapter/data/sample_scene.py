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
_NOISE_OFFSET = 16

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
_HAIR = ((22, 22, 24), (120, 80, 40), (200, 170, 90))
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


def _solid_points(parts):
    """All polygon vertices (Nx2) of the parts that are not shadows."""
    return np.concatenate([poly for part in parts if part.sem is not None for poly in part.polys])


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
        self.owner = np.full((height, width), -1, np.int16)
        self.emit = np.zeros((height, width), np.uint8)
        self.things = []

    def raster(self, polys, holes=()):
        """Fill ``polys`` minus ``holes`` into a mask over their bounding box, clipped.

        Returns (mask hxw bool, y0, x0), or None when nothing lands in the image. Polygons are
        filled one by one: a single cv2.fillPoly call would apply the even-odd rule to overlaps.
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
            for poly in group:
                fixed = np.rint((poly - origin) * (1 << _SHIFT)).astype(np.int32)
                cv2.fillPoly(mask, [fixed], value, cv2.LINE_8, _SHIFT)
        mask = mask.view(bool)
        return (mask, y0, x0) if mask.any() else None

    def paint(self, region, part, oid):
        """Paint ``part`` of thing ``oid`` over ``region`` (from :meth:`raster`).

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

    def fill(self, polys, color, sem=None, drv=DRIVABLE_BACKGROUND, emit=False, disjoint=False):
        """Paint background polygons (owned by no thing; drawn before every thing).

        Straight into the full-size maps: no mask is needed, and big facades stay cheap.
        ``sem`` None paints colour (and light, when ``emit``) only, e.g. windows on a facade.
        """
        fixed = [np.rint(p * (1 << _SHIFT)).astype(np.int32) for p in polys]
        targets = [(self.img, color)] + ([(self.emit, 1)] if emit else [])
        if sem is not None:
            targets += [(self.sem, sem), (self.drv, drv)] + ([] if emit else [(self.emit, 0)])
        for batch in [fixed] if disjoint else [[f] for f in fixed]:
            for target, value in targets:
                cv2.fillPoly(target, batch, value, cv2.LINE_8, _SHIFT)

    def extent(self, parts):
        """(x0, y0, x1, y1) float extent of the solid ``parts``, clipped to the image."""
        pts = _solid_points(parts)
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
        pts = _solid_points(parts)
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
        bend = self.bend * np.maximum(1 - np.asarray(s), 0) ** 2  # 0 from the bottom row on
        return self.vx + (self.left0 + np.asarray(u) * self.ppm - self.vx) * s + bend

    def s_at(self, z):
        """Depth of the ground ``z`` metres ahead."""
        return self.focal / (self.ppm * np.asarray(z, float))

    def z_at(self, s):
        """Metres ahead of the ground at depth ``s``."""
        return self.focal / (self.ppm * np.asarray(s, float))

    def outer_u(self, side):
        """``u`` of the far edge of the sidewalk on ``side`` (-1 left, +1 right)."""
        return -self.walk[0] if side < 0 else self.right_u + self.walk[1]

    def plane(self, u, z0, z1, h0, h1):
        """Corners (..., 4, 2) of upright rectangles on the line ``u`` (a number), from ``z0`` to
        ``z1`` metres ahead and ``h0`` to ``h1`` metres above the ground (arrays broadcast)."""
        z0, z1, h0, h1 = np.broadcast_arrays(z0, z1, h0, h1)
        s, h = self.s_at(np.stack([z0, z1, z1, z0], -1)), np.stack([h0, h0, h1, h1], -1)
        return np.stack([self.x(u, s), self.row(s) - h * self.ppm * s], -1)


def paint_sky(canvas, road, rng, time, weather):
    """Vertical gradient above the horizon, with clouds when partly cloudy; it gives light."""
    top, horizon = _SKY[time][weather == "overcast"]
    rows = int(np.floor(road.hy)) + 1
    t = np.linspace(0, 1, rows)[:, None]
    gradient = (np.asarray(top) * (1 - t) + np.asarray(horizon) * t).astype(np.uint8)
    canvas.img[:rows] = gradient[:, None, :]
    canvas.emit[:rows] = 1
    if weather != "partly cloudy":
        return
    for _ in range(int(rng.integers(2, 6))):
        rx = canvas.width * rng.uniform(0.05, 0.15)
        centre = canvas.width * rng.uniform(0, 1), road.hy * rng.uniform(0.1, 0.7)
        cloud = ellipse(*centre, rx, rx * rng.uniform(0.15, 0.35))
        canvas.fill([cloud], _jitter(rng, _CLOUD[time], 8), SEM["sky"], emit=True)


def paint_skyline(canvas, road, rng, city):
    """Distant buildings (``city``) or a distant tree line sitting on the horizon."""
    w, base = canvas.width, road.hy + 1
    if city:
        x, polys = -rng.uniform(0, 0.05) * w, []
        while x < w:
            step = w * rng.uniform(0.03, 0.09)
            polys.append(rect(x, base - canvas.height * rng.uniform(0.02, 0.14), x + step, base))
            x += step
        canvas.fill(polys, _jitter(rng, (125, 130, 142), 10), SEM["building"])
    else:
        xs = np.linspace(0, w - 1, 40)
        tops = base - canvas.height * np.clip(0.03 + np.cumsum(rng.normal(0, 0.006, 40)), 0.01,
                                              0.08)
        band = np.concatenate([np.stack([xs, tops], 1), [[w - 1, base], [0, base]]])
        canvas.fill([band], _jitter(rng, (60, 90, 55), 10), SEM["vegetation"])


def _ground_regions(road, rng, sides):
    """The ground's regions left to right: (u from, u to, semantic class, drivable class, RGB).

    Beyond the left sidewalk, the left sidewalk, each lane, the right sidewalk, and beyond it;
    beyond a sidewalk lies paving in a city and grass (terrain) elsewhere.
    """
    asphalt, walk = _jitter(rng, (105, 105, 108), 20), _jitter(rng, (165, 160, 152), 15)
    beyond = [(SEM["sidewalk"], _jitter(rng, (150, 140, 128), 10)) if city else
              (SEM["terrain"], _pick(rng, ((100, 135, 55), (150, 140, 90)), 10)) for city in sides]
    far = 1e4  # metres: "to the image border"
    regions = [(-far, road.outer_u(-1), *beyond[0]), (road.outer_u(-1), 0.0, SEM["sidewalk"], walk)]
    regions += [(LANE_M * i, LANE_M * (i + 1), SEM["road"], asphalt) for i in range(road.lanes)]
    regions += [(road.right_u, road.outer_u(1), SEM["sidewalk"], walk), (road.outer_u(1), far,
                                                                         *beyond[1])]
    drv = [DRIVABLE_BACKGROUND] * 2 + [DIRECT if i == road.ego else ALTERNATIVE
                                       for i in range(road.lanes)] + [DRIVABLE_BACKGROUND] * 2
    return [(lo, hi, sem, d, rgb) for (lo, hi, sem, rgb), d in zip(regions, drv)]


def paint_ground(canvas, road, rng, sides):
    """Road, sidewalks and the ground beyond them, with curbs, paving, markings and crossings.

    Each region (see _ground_regions) is a polygon with one vertex per row on each of its two
    boundary curves. Details are paint only: they change neither the semantic class nor the
    drivable class (a marking belongs to the lane it lies in).
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


def _spans(img, rows, lo, hi, colour):
    """Paint columns ceil(lo[i])..floor(hi[i]) (clipped) of row rows[i] of ``img``."""
    start = np.maximum(np.ceil(lo), 0).astype(np.int64)
    count = np.maximum(np.minimum(np.floor(hi), img.shape[1] - 1).astype(np.int64) - start + 1, 0)
    total = int(count.sum())
    if total:
        first = np.cumsum(count) - count  # index of each row's first pixel in the flat list
        img[np.repeat(rows, count), np.repeat(start - first, count) + np.arange(total)] = colour


def _paint_details(img, road, rng, rows, s, walk_colour):
    """Curbs, paving joints, lane markings and sometimes a zebra crossing, image only.

    rows: the image rows below the horizon; s: their depths; walk_colour: sidewalk RGB.
    """
    z = road.z_at(s)  # metres ahead of each row

    def band(lo, hi, colour, on):  # ground between u = lo and u = hi on the rows ``on``
        lo, hi = np.broadcast_to(lo, s.shape)[on], np.broadcast_to(hi, s.shape)[on]
        _spans(img, rows[on], road.x(lo, s[on]), road.x(hi, s[on]), colour)

    every, joints = np.ones_like(s, bool), z % 1.6 < 0.1
    for lo, hi in ((road.outer_u(-1), -0.2), (road.right_u + 0.2, road.outer_u(1))):
        band(lo, hi, _scaled(walk_colour, 0.85), joints)
    for lo, hi in ((-0.2, 0.0), (road.right_u, road.right_u + 0.2)):
        band(lo, hi, _scaled(walk_colour, 1.15), every)
    half = np.maximum(0.08, 0.6 / (road.ppm * s))  # half line width in metres, >= ~1 pixel
    near = s > 0.03  # rows closer to the horizon would alias into noise
    dashes = ((z / rng.uniform(8, 12) + rng.uniform()) % 1 < 0.4) & near
    white, yellow = (235, 235, 228), (230, 190, 40)
    lines = [(0.3, yellow if rng.random() < 0.4 else white, near),
             (road.right_u - 0.3, white, near)]
    lines += [(LANE_M * i, white, dashes) for i in range(1, road.lanes)]
    for position, colour, on in lines:
        band(position - half, position + half, colour, on)
    if rng.random() < 0.25:
        start = rng.uniform(8, 30)
        crossing = (z > start) & (z < start + 3.5)
        for u in np.arange(0.25, road.right_u - 0.5, 1.0):
            band(u, u + 0.5, white, crossing)


def paint_buildings(canvas, road, rng, side, time):
    """Facades along the far edge of the sidewalk on ``side``, with windows; gaps between."""
    u = road.outer_u(side) + side * rng.uniform(0.0, 1.5)
    z = road.z_at(1.5)  # start below the bottom row
    while z < 300:
        if rng.random() < 0.3:
            z += rng.uniform(3, 10)
        length, height = rng.uniform(8, 30), rng.uniform(6, 30)
        wall = road.plane(u, z, z + length, 0, height)
        canvas.fill([wall], _pick(rng, _BUILDING, 12), SEM["building"])
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
            canvas.fill(list(quads[chosen]), colour, emit=emit, disjoint=True)


def paint_greenery(canvas, road, rng, side):
    """A band of trees set back from the sidewalk on ``side``; grass (terrain) lies before it."""
    u = road.outer_u(side) + side * rng.uniform(2, 12)
    z = np.geomspace(road.z_at(1.5), 400, 80)
    height = np.clip(rng.uniform(4, 9) + np.cumsum(rng.normal(0, 0.7, len(z))), 2.5, 14)
    s = road.s_at(z)
    top = np.stack([road.x(u, s), road.row(s) - height * road.ppm * s], 1)
    bottom = np.stack([road.x(u, s), road.row(s)], 1)
    band = np.concatenate([top, bottom[::-1]])
    canvas.fill([band], _jitter(rng, (55, 100, 45), 15), SEM["vegetation"])


def paint_barrier(canvas, road, rng, side):
    """A wall or a fence (posts and two rails, see-through) on the far edge of a sidewalk."""
    u, z0 = road.outer_u(side), road.z_at(1.5)
    z1, height = z0 + rng.uniform(20, 150), rng.uniform(0.8, 2.2)
    if rng.random() < 0.5:
        wall = road.plane(u, z0, z1, 0, height)
        canvas.fill([wall], _jitter(rng, (165, 160, 150)), SEM["wall"])
        return
    posts = np.arange(z0, z1, rng.uniform(1.5, 3.0))
    polys = list(road.plane(u, posts, posts + 0.12, 0, height))
    polys += list(road.plane(u, z0, z1, [height * 0.35, height - 0.1],
                             [height * 0.35 + 0.08, height]))
    canvas.fill(polys, _jitter(rng, (150, 125, 100), 20), SEM["fence"])


# ----------------------------------------------------------------------------------------------
# Things. Builders take the ground contact point (cx, yb) in pixels and ``p`` pixels per metre
# there, and return the parts back to front.


def _shadow(cx, yb, half_width, p):
    """Dark ellipse on the ground under a vehicle; it stays ground in every label map."""
    return Part([ellipse(cx, yb, half_width, 0.12 * p)], shade=0.55)


def _tail_lights(cx, half_width, top, size, night, sem):
    """Two red lamps at the outer edges of a vehicle's rear; lit at night."""
    polys = [rect(cx - half_width * 0.97, top, cx - half_width * 0.7, top + size),
             rect(cx + half_width * 0.7, top, cx + half_width * 0.97, top + size)]
    return Part(polys, _TAIL[night], sem, emit=night)


def _wheels(cx, half_width, yb, top, inner, sem):
    """Two dark wheels seen from behind, from ``inner`` to 0.95 of ``half_width`` off centre."""
    return Part([rect(cx - half_width * 0.95, top, cx - half_width * inner, yb),
                 rect(cx + half_width * inner, top, cx + half_width * 0.95, yb)], _DARK, sem)


def car_parts(rng, cx, yb, p, night):
    """A car seen from behind: wheels, body, cabin with rear window, lights, plate."""
    w, h = rng.uniform(1.7, 1.9) / 2 * p, rng.uniform(1.4, 1.75) * p
    body, car = _pick(rng, _CAR), SEM["car"]
    cabin = np.array([[cx - w * 0.95, yb - 0.55 * h], [cx + w * 0.95, yb - 0.55 * h],
                      [cx + w * 0.72, yb - h], [cx - w * 0.72, yb - h]])
    window = np.array([[cx - w * 0.8, yb - 0.6 * h], [cx + w * 0.8, yb - 0.6 * h],
                       [cx + w * 0.64, yb - 0.93 * h], [cx - w * 0.64, yb - 0.93 * h]])
    return [
        _shadow(cx, yb, w * 1.15, p),
        _wheels(cx, w, yb, yb - 0.45 * p, 0.6, car),
        Part([rect(cx - w, yb - 0.55 * h, cx + w, yb - 0.2 * p), cabin], body, car),
        Part([window], _jitter(rng, _GLASS, 10), car),
        Part([rect(cx - w, yb - 0.36 * p, cx + w, yb - 0.2 * p)], _scaled(body, 0.6), car),
        _tail_lights(cx, w, yb - 0.55 * h + 0.04 * p, 0.15 * p, night, car),
        Part([rect(cx - 0.2 * p, yb - 0.52 * p, cx + 0.2 * p, yb - 0.4 * p)], (225, 225, 215), car),
    ]


def truck_parts(rng, cx, yb, p, night):
    """A box truck seen from behind: dual wheels, chassis, tall cargo box with doors."""
    w, h = rng.uniform(2.3, 2.5) / 2 * p, rng.uniform(2.9, 3.7) * p
    box, truck = _pick(rng, _TRUCK), SEM["truck"]
    seams = [rect(x - 0.03 * p, yb - h + 0.15 * p, x + 0.03 * p, yb - 0.9 * p)
             for x in (cx - 0.5 * w, cx, cx + 0.5 * w)]
    return [
        _shadow(cx, yb, w * 1.1, p),
        _wheels(cx, w, yb, yb - 0.6 * p, 0.4, truck),
        Part([rect(cx - w * 0.9, yb - 0.85 * p, cx + w * 0.9, yb - 0.45 * p)], (50, 50, 52), truck),
        Part([rect(cx - w, yb - h, cx + w, yb - 0.8 * p)], box, truck),
        Part(seams, _scaled(box, 0.65), truck),
        _tail_lights(cx, w, yb - 1.1 * p, 0.18 * p, night, truck),
    ]


def bus_parts(rng, cx, yb, p, night):
    """A bus seen from behind: rounded shell, big rear window, destination sign, stripe."""
    w, h = rng.uniform(2.45, 2.6) / 2 * p, rng.uniform(2.9, 3.3) * p
    body, bus = _pick(rng, _BUS), SEM["bus"]
    top, r = yb - h, 0.3 * p
    shell = np.array([[cx - w, yb - 0.3 * p], [cx + w, yb - 0.3 * p], [cx + w, top + r],
                      [cx + w - r, top], [cx - w + r, top], [cx - w, top + r]])
    return [
        _shadow(cx, yb, w * 1.1, p),
        _wheels(cx, w, yb, yb - 0.5 * p, 0.55, bus),
        Part([shell], body, bus),
        Part([rect(cx - w * 0.85, top + 0.6 * p, cx + w * 0.85, top + 1.5 * p)], _GLASS, bus),
        Part([rect(cx - w * 0.6, top + 0.12 * p, cx + w * 0.6, top + 0.45 * p)], _DARK, bus),
        Part([rect(cx - w * 0.45, top + 0.2 * p, cx + w * 0.45, top + 0.37 * p)], (255, 150, 0),
             bus, emit=night),
        Part([rect(cx - w, yb - 1.35 * p, cx + w, yb - 1.15 * p)], _scaled(body, 0.55), bus),
        _tail_lights(cx, w, yb - 1.0 * p, 0.25 * p, night, bus),
        Part([rect(cx - w, yb - 0.45 * p, cx + w, yb - 0.3 * p)], _DARK, bus),
    ]


def train_parts(rng, x0, yb, p, night):
    """A train crossing from left to right, side view: 2-4 cars from column ``x0`` on."""
    cars, length, h = int(rng.integers(2, 5)), 18.0, rng.uniform(3.6, 4.0)
    train = SEM["train"]
    starts = x0 + np.arange(cars) * (length + 0.8) * p
    shells = [rect(x, yb - h * p, x + length * p, yb - 0.8 * p) for x in starts]
    bogies = [rect(x + a * p, yb - 1.0 * p, x + (a + 3) * p, yb)
              for x in starts for a in (1.5, length - 4.5)]
    couplers = [rect(x + length * p, yb - 1.6 * p, x + (length + 0.8) * p, yb - 1.2 * p)
                for x in starts[:-1]]
    windows = [rect(x + (1.6 + 2.2 * k) * p, yb - 0.85 * h * p, x + (2.8 + 2.2 * k) * p,
                    yb - 0.6 * h * p) for x in starts for k in range(7)]
    stripe = [rect(x, yb - 0.45 * h * p, x + length * p, yb - 0.4 * h * p) for x in starts]
    return [
        Part(bogies + couplers, _DARK, train),
        Part(shells, _pick(rng, _TRAIN), train),
        Part(windows, (250, 220, 150) if night else _GLASS, train, emit=night),
        Part(stripe, (240, 200, 40), train),
    ]


def pedestrian_parts(rng, cx, yb, p):
    """A walking person, front or back view: legs, torso, arms, head and hair."""
    h = rng.uniform(1.55, 1.9) * p
    person, stride = SEM["person"], rng.uniform(-0.18, 0.18) * p
    hip, shoulder = yb - 0.5 * h, yb - 0.81 * h
    shirt = _pick(rng, _CLOTHES, 20)
    torso = np.array([[cx - 0.22 * p, shoulder], [cx + 0.22 * p, shoulder],
                      [cx + 0.17 * p, hip + 0.05 * p], [cx - 0.17 * p, hip + 0.05 * p]])
    return [
        Part([segment((cx - 0.08 * p, hip), (cx - 0.08 * p - stride, yb), 0.15 * p),
              segment((cx + 0.08 * p, hip), (cx + 0.08 * p + stride, yb), 0.15 * p)],
             _pick(rng, _TROUSERS, 10), person),
        Part([torso], shirt, person),
        Part([segment((cx - 0.21 * p, shoulder), (cx - 0.26 * p + stride / 2, hip), 0.09 * p),
              segment((cx + 0.21 * p, shoulder), (cx + 0.26 * p - stride / 2, hip), 0.09 * p)],
             _scaled(shirt, 0.85), person),
        Part([ellipse(cx, yb - 0.925 * h, 0.1 * p, 0.125 * p)], _pick(rng, _SKIN, 10), person),
        Part([ellipse(cx, yb - 0.96 * h, 0.1 * p, 0.07 * p)], _pick(rng, _HAIR, 10), person),
    ]


def rider_parts(rng, joints, p):
    """A rider on a bike, side view; ``joints`` maps hip, knee, foot, shoulder, hand and head
    to (x, y) pixels."""
    rider, j = SEM["rider"], joints
    jacket = _pick(rng, _CLOTHES, 20)
    return [
        Part([segment(j["hip"], j["knee"], 0.17 * p), segment(j["knee"], j["foot"], 0.13 * p)],
             _pick(rng, _TROUSERS, 10), rider),
        Part([segment(j["hip"], j["shoulder"], 0.36 * p)], jacket, rider),
        Part([segment(j["shoulder"], j["hand"], 0.1 * p)], _scaled(jacket, 0.8), rider),
        Part([ellipse(*j["head"], 0.14 * p, 0.15 * p)], _pick(rng, _CLOTHES, 20), rider),
    ]


def _joints(cx, yb, p, facing, offsets):
    """Rider joints from ``offsets`` (name -> (forward, up) metres) around (cx, yb)."""
    return {name: (cx + fwd * p * facing, yb - up * p) for name, (fwd, up) in offsets.items()}


_MOTO_RIDER = {"hip": (-0.15, 0.98), "knee": (0.22, 0.88), "foot": (0.15, 0.45),
               "shoulder": (0.05, 1.58), "hand": (0.55, 1.1), "head": (0.12, 1.76)}
_BIKE_RIDER = {"hip": (-0.12, 0.95), "knee": (0.15, 0.72), "foot": (0.02, 0.3),
               "shoulder": (0.1, 1.55), "hand": (0.36, 1.02), "head": (0.17, 1.74)}


def motorcycle_parts(rng, cx, yb, p, facing):
    """A motorcycle, side view facing ``facing`` (+1 right, -1 left): fat wheels, engine,
    tank and seat, fork and handlebar."""
    moto, f = SEM["motorcycle"], facing
    rear, front = (cx - 0.7 * p * f, yb - 0.32 * p), (cx + 0.7 * p * f, yb - 0.32 * p)
    body = np.array([[cx - 0.8 * p * f, yb - 0.62 * p], [cx + 0.3 * p * f, yb - 0.58 * p],
                     [cx + 0.5 * p * f, yb - 0.95 * p], [cx + 0.05 * p * f, yb - 0.98 * p],
                     [cx - 0.45 * p * f, yb - 0.82 * p]])
    return [
        Part([ellipse(*rear, 0.32 * p, 0.32 * p), ellipse(*front, 0.32 * p, 0.32 * p)], _DARK,
             moto),
        Part([ellipse(*rear, 0.13 * p, 0.13 * p), ellipse(*front, 0.13 * p, 0.13 * p)],
             (150, 150, 155), moto),
        Part([rect(cx - 0.25 * p, yb - 0.62 * p, cx + 0.25 * p, yb - 0.28 * p)], (85, 85, 90),
             moto),
        Part([segment(front, (cx + 0.5 * p * f, yb - 1.05 * p), 0.08 * p)], (140, 140, 145), moto),
        Part([body], _pick(rng, _CAR), moto),
        Part([segment((cx + 0.42 * p * f, yb - 1.05 * p), (cx + 0.62 * p * f, yb - 1.12 * p),
                      0.07 * p)], _DARK, moto),
    ]


def bicycle_parts(rng, cx, yb, p, facing):
    """A bicycle, side view: thin ring wheels and a diamond frame of tubes."""
    bike, f, r = SEM["bicycle"], facing, 0.34 * p
    rear, front = (cx - 0.52 * p * f, yb - r), (cx + 0.52 * p * f, yb - r)
    crank, seat, head = (cx, yb - 0.3 * p), (cx - 0.12 * p * f, yb - 0.88 * p), (
        cx + 0.38 * p * f, yb - 0.85 * p)
    tube, hole = max(0.05 * p, 1.0), max(r - max(0.07 * p, 1.2), 0.1)
    frame = [segment(a, b, tube) for a, b in ((rear, crank), (rear, seat), (seat, crank),
                                              (seat, head), (head, crank), (head, front))]
    return [
        Part([ellipse(*rear, r, r), ellipse(*front, r, r)], _DARK, bike,
             holes=(ellipse(*rear, hole, hole), ellipse(*front, hole, hole))),
        Part(frame, _pick(rng, _CLOTHES, 20), bike),
        Part([segment(head, (cx + 0.32 * p * f, yb - 1.02 * p), tube)], _DARK, bike),
    ]


def tractor_parts(rng, cx, yb, p, facing):
    """A farm tractor, side view ("other vehicle"): big rear wheel, hood, exhaust, glass cab.

    Its pixels are ignored (255) in the semantic map, as BDD100K does for other vehicles.
    """
    f, body = facing, _pick(rng, _TRACTOR)
    rear, front = (cx - 0.9 * p * f, yb - 0.75 * p), (cx + 1.25 * p * f, yb - 0.45 * p)
    return [
        _shadow(cx, yb, 2.2 * p, p),
        Part([rect(cx - 0.5 * p * f, yb - 1.5 * p, cx + 1.8 * p * f, yb - 0.7 * p)], body,
             IGNORE_LABEL),
        Part([segment((cx + p * f, yb - 1.5 * p), (cx + p * f, yb - 2.4 * p), 0.1 * p),
              rect(cx - 1.6 * p * f, yb - 2.8 * p, cx - 0.2 * p * f, yb - 1.35 * p)], _DARK,
             IGNORE_LABEL),
        Part([rect(cx - 1.5 * p * f, yb - 2.65 * p, cx - 0.3 * p * f, yb - 1.5 * p)],
             (150, 190, 210), IGNORE_LABEL),
        Part([rect(cx - 1.7 * p * f, yb - 2.95 * p, cx - 0.1 * p * f, yb - 2.78 * p)], body,
             IGNORE_LABEL),
        Part([ellipse(*rear, 0.75 * p, 0.75 * p), ellipse(*front, 0.45 * p, 0.45 * p)], _DARK,
             IGNORE_LABEL),
        Part([ellipse(*rear, 0.32 * p, 0.32 * p), ellipse(*front, 0.2 * p, 0.2 * p)], body,
             IGNORE_LABEL),
    ]


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
    housing = _jitter(rng, _DARK, 12)
    return [Part(poles, (120, 120, 125), pole)], [
        Part([rect(xh - 0.23 * p, hang, xh + 0.23 * p, hang + 1.15 * p)], housing, light),
        Part([lamp for i, lamp in enumerate(lamps) if i != lit], _LAMP_OFF, light),
        Part([lamps[lit]], _LAMP_LIT[colour], light, emit=True),
    ]


def traffic_sign_parts(rng, x, yb, p):
    """(pole parts, sign parts): a post at column ``x`` and one of five plates on it."""
    sign, kind = SEM["traffic sign"], int(rng.integers(5))
    height = 3.6 if kind == 4 else rng.uniform(2.0, 2.6)
    cx, cy = x, yb - (height + 0.45) * p
    red, white, blue, green = (200, 25, 30), (240, 240, 240), (25, 70, 170), (20, 110, 60)
    if kind == 0:  # prohibition: red ring
        plate = [Part([ellipse(cx, cy, 0.4 * p, 0.4 * p)], red, sign),
                 Part([ellipse(cx, cy, 0.29 * p, 0.29 * p)], white, sign)]
    elif kind == 1:  # warning: red triangle
        tri = np.array([[0, -0.5], [0.45, 0.3], [-0.45, 0.3]])
        plate = [Part([np.array([cx, cy]) + tri * p], red, sign),
                 Part([np.array([cx, cy + 0.06 * p]) + tri * 0.62 * p], white, sign)]
    elif kind == 2:  # mandatory direction: blue square with an arrow
        plate = [Part([rect(cx - 0.35 * p, cy - 0.35 * p, cx + 0.35 * p, cy + 0.35 * p)], blue,
                      sign),
                 Part([segment((cx, cy + 0.25 * p), (cx, cy - 0.05 * p), 0.12 * p),
                       np.array([[cx - 0.18 * p, cy - 0.05 * p], [cx + 0.18 * p, cy - 0.05 * p],
                                 [cx, cy - 0.27 * p]])], white, sign)]
    elif kind == 3:  # stop: red octagon with a white bar
        plate = [Part([ellipse(cx, cy, 0.4 * p, 0.4 * p, n=8)], red, sign),
                 Part([rect(cx - 0.28 * p, cy - 0.07 * p, cx + 0.28 * p, cy + 0.07 * p)], white,
                      sign)]
    else:  # guide: green board with lines of text
        plate = [Part([rect(cx - 0.8 * p, cy - 0.45 * p, cx + 0.8 * p, cy + 0.45 * p)], green,
                      sign),
                 Part([rect(cx - 0.6 * p, cy + d * p, cx + 0.5 * p, cy + (d + 0.1) * p)
                       for d in (-0.3, -0.05, 0.2)], white, sign)]
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
    green, veg = _jitter(rng, (60, 110, 45), 20), SEM["vegetation"]
    blobs = [ellipse(x + rng.uniform(-0.8, 0.8) * crown * p,
                     yb - (trunk + crown * rng.uniform(0.6, 1.2)) * p,
                     crown * rng.uniform(0.6, 1.0) * p, crown * rng.uniform(0.6, 1.0) * p)
             for _ in range(4)]
    return [Part([rect(x - 0.15 * p, yb - (trunk + crown) * p, x + 0.15 * p, yb)], (95, 70, 45),
                 veg),
            Part(blobs[:2], _scaled(green, 0.8), veg), Part(blobs[2:], green, veg)]


_VEHICLES = {"car": car_parts, "truck": truck_parts, "bus": bus_parts}


# ----------------------------------------------------------------------------------------------
# Placing things and drawing the whole scene


def _overlap(a, b):
    """Intersection of boxes (x0, y0, x1, y1) over the smaller one's area (0 when apart)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / max(smaller, 1e-6)


class Composer:
    """Places things on the road and sidewalks, then draws them far to near."""

    def __init__(self, canvas, road, rng, night):
        self.canvas, self.road, self.rng, self.night = canvas, road, rng, night
        self.items = []  # (s, insertion order, [(parts, category, draw kwargs), ...])
        self.boxes = []  # extents of the placed movable things

    def add(self, s, calls, movable=True):
        """Queue ``calls`` (list of (parts, category, kwargs), drawn in order) at depth ``s``.

        Refused when they would be too small to draw or, for ``movable`` things, when they and
        an already placed movable thing would hide much of each other (a model cannot learn
        boxes around hidden pixels). Returns the number of labels added (0 when refused).
        """
        box = self.canvas.extent([part for parts, _, _ in calls for part in parts])
        if min(box[2] - box[0], box[3] - box[1]) < MIN_OBJECT_PX:
            return 0
        if movable and any(_overlap(box, other) > 0.35 for other in self.boxes):
            return 0
        self.items.append((s, len(self.items), calls))
        if movable:
            self.boxes.append(box)
        return sum(category is not None for _, category, _ in calls)

    def draw(self):
        """Draw everything queued, farthest (smallest ``s``) first."""
        for _, _, calls in sorted(self.items, key=lambda item: item[:2]):
            for parts, category, kwargs in calls:
                self.canvas.draw(parts, category, **kwargs)

    def ground(self, u, s):
        """(column, row, pixels per metre) of the ground point ``u`` metres at depth ``s``."""
        return float(self.road.x(u, s)), float(self.road.row(s)), self.road.ppm * s

    def sidewalk_u(self, side):
        """A random ``u`` on the sidewalk of ``side``, away from both of its edges."""
        inner = 0.0 if side < 0 else self.road.right_u
        outer = self.road.outer_u(side)
        return inner + (outer - inner) * self.rng.uniform(0.2, 0.8)

    def side(self):
        """-1 (left) or +1 (right), at random."""
        return -1 if self.rng.random() < 0.5 else 1

    def vehicle(self, kind):
        """A car, truck or bus in a lane, seen from behind."""
        lane = int(self.rng.integers(self.road.lanes))
        s = self.rng.uniform(0.06, 0.6 if lane == self.road.ego else 0.8)
        cx, yb, p = self.ground(LANE_M * (lane + 0.5 + self.rng.uniform(-0.1, 0.1)), s)
        return self.add(s, [(_VEHICLES[kind](self.rng, cx, yb, p, self.night), kind, {})])

    def pedestrian(self):
        """A person on a sidewalk or, sometimes, crossing the road."""
        s = self.rng.uniform(0.08, 0.9)
        if self.rng.random() < 0.2:
            u = self.rng.uniform(0.5, self.road.right_u - 0.5)
        else:
            u = self.sidewalk_u(self.side())
        cx, yb, p = self.ground(u, s)
        return self.add(s, [(pedestrian_parts(self.rng, cx, yb, p), "pedestrian", {})])

    def crowd(self):
        """A tight group of 4-8 people drawn together, labeled by one crowd box."""
        rng = self.rng
        s = rng.uniform(0.15, 0.7)
        if rng.random() < 0.7:
            u0 = self.sidewalk_u(self.side())
        else:  # crossing the road
            u0 = rng.uniform(1.0, self.road.right_u - 1.0)
        members = sorted((s * rng.uniform(0.95, 1.05), u0 + rng.uniform(-0.8, 0.8))
                         for _ in range(int(rng.integers(4, 9))))
        parts = [part for sk, uk in members for part in pedestrian_parts(rng, *self.ground(uk, sk))]
        return self.add(s, [(parts, "pedestrian", {"crowd": True})])

    def cyclist(self):
        """A motorcycle in a lane or a bicycle near the curb, side view, with its rider."""
        rng, f = self.rng, self.side()
        motor, s = rng.random() < 0.5, rng.uniform(0.1, 0.8)
        if motor:
            u = LANE_M * (int(rng.integers(self.road.lanes)) + rng.uniform(0.3, 0.7))
        else:
            u = self.road.right_u - 0.8 if rng.random() < 0.6 else self.sidewalk_u(self.side())
        cx, yb, p = self.ground(u, s)
        bike = (motorcycle_parts if motor else bicycle_parts)(rng, cx, yb, p, f)
        joints = _joints(cx, yb, p, f, _MOTO_RIDER if motor else _BIKE_RIDER)
        return self.add(s, [(bike, "motorcycle" if motor else "bicycle", {}),
                            (rider_parts(rng, joints, p), "rider", {})])

    def other_vehicle(self):
        """A tractor in a lane ("other vehicle")."""
        s = self.rng.uniform(0.1, 0.6)
        u = LANE_M * (int(self.rng.integers(self.road.lanes)) + 0.5)
        cx, yb, p = self.ground(u, s)
        parts = tractor_parts(self.rng, cx, yb, p, self.side())
        return self.add(s, [(parts, OTHER_VEHICLE, {})])

    def train(self):
        """A train crossing the road far ahead."""
        s = self.rng.uniform(0.05, 0.14)
        _, yb, p = self.ground(0.0, s)
        x0 = self.canvas.width * self.rng.uniform(-0.6, 0.4)
        return self.add(s, [(train_parts(self.rng, x0, yb, p, self.night), "train", {})])

    def traffic_light(self):
        """A traffic light on a sidewalk pole, hanging from an arm over the road or on the pole."""
        side, rng = self.side(), self.rng
        s = rng.uniform(0.15, 0.65)
        u = -0.6 if side < 0 else self.road.right_u + 0.6
        x, yb, p = self.ground(u, s)
        if rng.random() < 0.5:
            top, xh = 5.6, float(self.road.x(u - side * rng.uniform(2.5, 6.0), s))
        else:
            top, xh = rng.uniform(3.0, 3.8), x - side * 0.4 * p
        colour = TRAFFIC_LIGHT_COLORS[rng.choice(3, p=(0.4, 0.2, 0.4))]
        pole, light = traffic_light_parts(rng, x, xh, yb, top, p, colour)
        return self.add(s, [(pole, None, {}), (light, "traffic light", {"light": colour})],
                        movable=False)

    def traffic_sign(self):
        """A traffic sign on a post at the curb."""
        side, s = self.side(), self.rng.uniform(0.1, 0.7)
        x, yb, p = self.ground(-0.5 if side < 0 else self.road.right_u + 0.5, s)
        post, plate = traffic_sign_parts(self.rng, x, yb, p)
        return self.add(s, [(post, None, {}), (plate, "traffic sign", {})], movable=False)

    def furniture(self, side, city):
        """Unlabeled street lamps and trees along ``side``, every few tens of metres."""
        rng, road = self.rng, self.road
        if rng.random() < 0.6:
            u = -0.4 if side < 0 else road.right_u + 0.4
            for z in np.arange(rng.uniform(5, 20), 150, rng.uniform(18, 35)):
                x, yb, p = self.ground(u, road.s_at(z))
                lamp = street_lamp_parts(x, yb, p, -side, self.night)
                self.add(road.s_at(z), [(lamp, None, {})], movable=False)
        if rng.random() < (0.4 if city else 0.8):
            u = road.outer_u(side) + side * (-0.8 if city else rng.uniform(0.5, 2.0))
            for z in np.arange(rng.uniform(4, 15), 120, rng.uniform(8, 20)):
                x, yb, p = self.ground(u, road.s_at(z))
                self.add(road.s_at(z), [(tree_parts(rng, x, yb, p), None, {})], movable=False)


_KINDS = ("car", "truck", "bus", "pedestrian", "cyclist", "traffic light", "traffic sign")
_KIND_P = (0.42, 0.07, 0.05, 0.18, 0.1, 0.09, 0.09)
MAX_LABELS = 12


def _force(place, what):
    """Call ``place`` until it places something; a scene asked to hold ``what`` must."""
    for _ in range(200):
        placed = place()
        if placed:
            return placed
    raise RuntimeError(f"could not place {what} in the scene")


def populate(composer, rng, sides, crowd, other_vehicle):
    """Queue up to MAX_LABELS labeled things (the forced ones first), then street furniture."""
    # Forced content first, so that nothing placed before can make it impossible; elsewhere
    # a crowd or an other vehicle turns up now and then, as in the real data.
    placed = _force(composer.crowd, "a crowd") if crowd else (
        composer.crowd() if rng.random() < 0.1 else 0)
    placed += _force(composer.other_vehicle, "an other vehicle") if other_vehicle else (
        composer.other_vehicle() if rng.random() < 0.08 else 0)
    placed += composer.train() if rng.random() < 0.06 else 0
    budget = max(placed, int(rng.integers(1, MAX_LABELS + 1)))
    for _ in range(3 * budget):  # some attempts are refused (see Composer.add)
        kind = _KINDS[rng.choice(len(_KINDS), p=_KIND_P)]
        if placed + (2 if kind == "cyclist" else 1) > budget:  # a rider and a bike: 2 labels
            continue
        if kind in _VEHICLES:
            placed += composer.vehicle(kind)
        else:
            placed += getattr(composer, kind.replace(" ", "_"))()
    for side, city in zip((-1, 1), sides):
        composer.furniture(side, city)


def finish(canvas, road, rng, time):
    """The final HxWx3 uint8 RGB image: lighting for ``time`` (things that emit light keep their
    colour; at night the ego car's headlights brighten the near ground) and mild sensor noise."""
    height, width = canvas.height, canvas.width
    gain = np.diag(_GAIN[time]).astype(np.float32)
    lit = canvas.img.copy()
    if time != "daytime":
        # Bands of rows of constant gain: cv2.transform is many times cheaper than float maps.
        for band in np.array_split(np.arange(height), min(height, 48)):
            near = min(max((road.s_of_row(band.mean()) - 0.45) / 0.55, 0.0), 1.0)
            boost = 1 + 1.6 * near ** 1.5 if time == "night" else 1.0
            window = slice(band[0], band[-1] + 1)
            lit[window] = cv2.transform(canvas.img[window], gain * boost)
        cv2.copyTo(canvas.img, canvas.emit, lit)
    # Smooth blotches plus fine grain (from raw bytes: cheap), added with an offset because
    # OpenCV's saturating add needs unsigned values.
    blotch = rng.standard_normal((height // 16 + 2, width // 16 + 2)).astype(np.float32) * 5
    noise = cv2.resize(blotch, (width, height), interpolation=cv2.INTER_LINEAR)
    grain = np.frombuffer(rng.bytes(height * width), np.uint8).reshape(height, width) & 7
    noise = np.clip(noise + grain + (_NOISE_OFFSET - 3.0), 0, 2 * _NOISE_OFFSET).astype(np.uint8)
    lit = cv2.add(lit, cv2.merge([noise] * 3))
    return cv2.subtract(lit, (_NOISE_OFFSET,) * 3 + (0,))


@dataclass
class Scene:
    """A drawn scene. image: HxWx3 uint8 RGB; sem: HxW uint8 train ids (255 = ignore);
    drivable: HxW uint8 (0 direct, 1 alternative, 2 background); labels: see Canvas.labels;
    attributes: det_20 frame attributes (weather, scene, timeofday)."""

    image: np.ndarray
    sem: np.ndarray
    drivable: np.ndarray
    labels: list
    attributes: dict


def draw_scene(rng, height, width, empty=False, crowd=False, other_vehicle=False):
    """Draw one random road scene with ``rng`` (a numpy Generator).

    empty: no things at all (an empty road). crowd / other_vehicle: the scene must hold a crowd
    box / an "other vehicle" (a tractor).
    """
    time = TIMES_OF_DAY[rng.choice(3, p=(0.6, 0.15, 0.25))]
    weather = WEATHERS[rng.choice(3, p=(0.55, 0.3, 0.15))]
    canvas, road = Canvas(height, width), Road(rng, height, width)
    sides = (bool(rng.random() < 0.65), bool(rng.random() < 0.65))  # buildings, else greenery
    paint_sky(canvas, road, rng, time, weather)
    if rng.random() < 0.7:
        paint_skyline(canvas, road, rng, any(sides))
    paint_ground(canvas, road, rng, sides)
    for side, city in zip((-1, 1), sides):
        if city:
            paint_buildings(canvas, road, rng, side, time)
        else:
            paint_greenery(canvas, road, rng, side)
        if rng.random() < 0.3:
            paint_barrier(canvas, road, rng, side)
    if not empty:
        composer = Composer(canvas, road, rng, time == "night")
        populate(composer, rng, sides, crowd, other_vehicle)
        composer.draw()
    kind = "city street" if any(sides) else ("highway" if road.lanes >= 3 else "residential")
    return Scene(finish(canvas, road, rng, time), canvas.sem, canvas.drv, canvas.labels(),
                 {"weather": weather, "scene": kind, "timeofday": time})
