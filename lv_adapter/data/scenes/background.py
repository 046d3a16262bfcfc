"""The backdrop behind every thing: sky and clouds, the distant skyline, facades with windows,
tree bands, walls and fences.

All of it is filled straight into the canvas (:meth:`~.canvas.Canvas.fill`), owned by no thing
and labeled by no box. Writes the image, the semantic map (sky, building, vegetation, wall,
fence), the drivable map (background) and the light map (the sky and lit windows give light).
"""
import numpy as np

from lv_adapter.data.scenes.canvas import SEM
from lv_adapter.data.scenes.palette import GLASS, jitter, pick
from lv_adapter.data.scenes.shapes import ellipse, rect

# (top, horizon) RGB of the sky per time of day: clear sky first, overcast second.
_SKY = {
    "daytime": (((55, 115, 200), (175, 205, 235)), ((145, 150, 160), (205, 205, 210))),
    "dawn/dusk": (((60, 60, 125), (250, 160, 100)), ((105, 95, 115), (190, 150, 130))),
    "night": (((4, 6, 20), (30, 32, 55)), ((12, 12, 18), (45, 42, 45))),
}
_CLOUD = {"daytime": (240, 240, 245), "dawn/dusk": (240, 185, 165), "night": (40, 40, 55)}
_BUILDING = ((200, 185, 160), (150, 150, 150), (160, 85, 65), (225, 220, 210), (110, 120, 135))
_LIT_WINDOW = (255, 215, 140)


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
        canvas.fill([cloud], jitter(rng, _CLOUD[time], 8), SEM["sky"], emit=True)


def paint_skyline(canvas, road, rng, city):
    """Distant buildings (``city``) or a distant tree line sitting on the horizon."""
    if city:
        _paint_city_skyline(canvas, road, rng)
    else:
        _paint_tree_line(canvas, road, rng)


def _paint_city_skyline(canvas, road, rng):
    """A row of flat-topped distant buildings of random widths and heights across the image."""
    w, base = canvas.width, road.hy + 1
    x, polys = -rng.uniform(0, 0.05) * w, []
    while x < w:
        step = w * rng.uniform(0.03, 0.09)
        polys.append(rect(x, base - canvas.height * rng.uniform(0.02, 0.14), x + step, base))
        x += step
    canvas.fill(polys, jitter(rng, (125, 130, 142), 10), SEM["building"])


def _paint_tree_line(canvas, road, rng):
    """A band of distant vegetation whose top wanders randomly across the image."""
    w, base = canvas.width, road.hy + 1
    xs = np.linspace(0, w - 1, 40)
    tops = base - canvas.height * np.clip(0.03 + np.cumsum(rng.normal(0, 0.006, 40)), 0.01, 0.08)
    band = np.concatenate([np.stack([xs, tops], 1), [[w - 1, base], [0, base]]])
    canvas.fill([band], jitter(rng, (60, 90, 55), 10), SEM["vegetation"])


def paint_buildings(canvas, road, rng, side, time):
    """Facades along the far edge of the sidewalk on ``side``, with windows; gaps between."""
    u = road.outer_u(side) + side * rng.uniform(0.0, 1.5)
    z = road.z_at(1.5)  # start below the bottom row
    while z < 300:
        if rng.random() < 0.3:
            z += rng.uniform(3, 10)
        length, height = rng.uniform(8, 30), rng.uniform(6, 30)
        wall = road.plane(u, z, z + length, 0, height)
        canvas.fill([wall], pick(rng, _BUILDING, 12), SEM["building"])
        _paint_windows(canvas, road, rng, (u, z, length, height), time)
        z += length


def _paint_windows(canvas, road, rng, facade, time):
    """A grid of windows on ``facade`` = (u, z, length, height); some are lit at night.

    Paint and light only: the windows stay building in the semantic map.
    """
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
    glass = jitter(rng, GLASS, 12)
    for chosen, colour, emit in ((~lit, glass, False), (lit, _LIT_WINDOW, True)):
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
    canvas.fill([band], jitter(rng, (55, 100, 45), 15), SEM["vegetation"])


def paint_barrier(canvas, road, rng, side):
    """A wall or a fence (posts and two rails, see-through) on the far edge of a sidewalk."""
    u, z0 = road.outer_u(side), road.z_at(1.5)
    z1, height = z0 + rng.uniform(20, 150), rng.uniform(0.8, 2.2)
    if rng.random() < 0.5:
        wall = road.plane(u, z0, z1, 0, height)
        canvas.fill([wall], jitter(rng, (165, 160, 150)), SEM["wall"])
        return
    posts = np.arange(z0, z1, rng.uniform(1.5, 3.0))
    polys = list(road.plane(u, posts, posts + 0.12, 0, height))
    polys += list(road.plane(u, z0, z1, [height * 0.35, height - 0.1],
                             [height * 0.35 + 0.08, height]))
    canvas.fill(polys, jitter(rng, (150, 125, 100), 20), SEM["fence"])
