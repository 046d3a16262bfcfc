"""The top-level entry point: :func:`draw_scene` draws one random road scene with its labels.

Picks the time of day, the weather and the road, paints the backdrop (:mod:`.background`) and
the ground (:mod:`.ground`), places and draws the things (:mod:`.composer`) and lights the result
(:mod:`.lighting`). Returns the image with the canvas's semantic and drivable maps, its det_20
labels and its lane-marking map (which painted road marking, if any, each pixel shows; see
:class:`Scene`).
"""
from dataclasses import dataclass

import numpy as np

from lv_adapter.data.scenes.background import (
    paint_barrier,
    paint_buildings,
    paint_greenery,
    paint_sky,
    paint_skyline,
)
from lv_adapter.data.scenes.canvas import Canvas
from lv_adapter.data.scenes.composer import Composer, populate
from lv_adapter.data.scenes.ground import paint_ground
from lv_adapter.data.scenes.lighting import finish
from lv_adapter.data.scenes.road import Road

TIMES_OF_DAY = ("daytime", "dawn/dusk", "night")
WEATHERS = ("clear", "partly cloudy", "overcast")


@dataclass
class Scene:
    """A drawn scene. image: HxWx3 uint8 RGB; sem: HxW uint8 train ids (255 = ignore);
    drivable: HxW uint8 (0 direct, 1 alternative, 2 background); labels: see Canvas.labels;
    attributes: det_20 frame attributes (weather, scene, timeofday); owner: HxW, the ``oid`` of
    the thing that painted each pixel (instance masks: ``owner == label["oid"]``); markings:
    HxW uint8, the road marking visible on each pixel, 0 none, k >= 1 the kind
    ``ground.MARKINGS[k - 1]`` (BDD100K lane category, style, direction)."""

    image: np.ndarray
    sem: np.ndarray
    drivable: np.ndarray
    labels: list
    attributes: dict
    owner: np.ndarray = None
    markings: np.ndarray = None  # last: positional construction elsewhere stays valid


def _paint_setting(canvas, road, rng, sides, time, weather):
    """Sky, skyline, ground and, on each side, buildings (city) or greenery, maybe a barrier."""
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


def draw_scene(rng, height, width, empty=False, crowd=False, other_vehicle=False):
    """Draw one random road scene with ``rng`` (a numpy Generator).

    empty: no things at all (an empty road). crowd / other_vehicle: the scene must hold a crowd
    box / an "other vehicle" (a tractor).
    """
    time = TIMES_OF_DAY[rng.choice(3, p=(0.6, 0.15, 0.25))]
    weather = WEATHERS[rng.choice(3, p=(0.55, 0.3, 0.15))]
    canvas, road = Canvas(height, width), Road(rng, height, width)
    sides = (bool(rng.random() < 0.65), bool(rng.random() < 0.65))  # buildings, else greenery
    _paint_setting(canvas, road, rng, sides, time, weather)
    if not empty:
        composer = Composer(canvas, road, rng, time == "night")
        populate(composer, rng, sides, crowd, other_vehicle)
        composer.draw()
    kind = "city street" if any(sides) else ("highway" if road.lanes >= 3 else "residential")
    return Scene(finish(canvas, road, rng, time), canvas.sem, canvas.drv, canvas.labels(),
                 {"weather": weather, "scene": kind, "timeofday": time}, canvas.owner,
                 canvas.marking)
