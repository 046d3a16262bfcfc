"""Vehicles as lists of :class:`~.canvas.Part`: cars, trucks and buses seen from behind; a
train, motorcycles, bicycles and a tractor seen from the side.

Builders take the ground contact point (cx, yb) in pixels (the train: its left end x0) and ``p``
pixels per metre there, and return the parts back to front. They paint nothing themselves:
:meth:`~.canvas.Canvas.draw` writes the parts into the image, the semantic map (car, truck, bus,
train, motorcycle, bicycle; a tractor is ignored, 255), the drivable map (background), the owner
map and the light map (tail lights, lit windows and signs at night). Shadows only darken the
image and stay ground in every label map.
"""
import numpy as np

from lv_adapter.data.scenes.canvas import SEM, Part
from lv_adapter.data.scenes.palette import CLOTHES, DARK, GLASS, jitter, pick, scaled
from lv_adapter.data.scenes.shapes import ellipse, rect, segment
from lv_adapter.tasks import IGNORE_LABEL

_CAR = ((232, 232, 232), (25, 25, 28), (150, 152, 158), (170, 20, 25), (25, 50, 140),
        (20, 70, 45), (200, 185, 150), (90, 90, 95), (205, 120, 30))  # also motorcycles
_TRUCK = ((225, 225, 220), (180, 180, 185), (40, 80, 160), (160, 30, 30), (30, 110, 60))
_BUS = ((235, 190, 20), (190, 30, 35), (30, 90, 170), (225, 228, 230), (40, 140, 80))
_TRAIN = ((190, 195, 200), (170, 35, 40), (40, 70, 150))
_TRACTOR = ((230, 160, 20), (40, 130, 45), (235, 200, 25))
_TAIL = ((170, 20, 25), (255, 35, 35))  # day, night (lit)


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
                 rect(cx + half_width * inner, top, cx + half_width * 0.95, yb)], DARK, sem)


def car_parts(rng, cx, yb, p, night):
    """A car seen from behind: wheels, body, cabin with rear window, lights, plate."""
    w, h = rng.uniform(1.7, 1.9) / 2 * p, rng.uniform(1.4, 1.75) * p
    body, car = pick(rng, _CAR), SEM["car"]
    cabin = np.array([[cx - w * 0.95, yb - 0.55 * h], [cx + w * 0.95, yb - 0.55 * h],
                      [cx + w * 0.72, yb - h], [cx - w * 0.72, yb - h]])
    window = np.array([[cx - w * 0.8, yb - 0.6 * h], [cx + w * 0.8, yb - 0.6 * h],
                       [cx + w * 0.64, yb - 0.93 * h], [cx - w * 0.64, yb - 0.93 * h]])
    return [
        _shadow(cx, yb, w * 1.15, p),
        _wheels(cx, w, yb, yb - 0.45 * p, 0.6, car),
        Part([rect(cx - w, yb - 0.55 * h, cx + w, yb - 0.2 * p), cabin], body, car),
        Part([window], jitter(rng, GLASS, 10), car),
        Part([rect(cx - w, yb - 0.36 * p, cx + w, yb - 0.2 * p)], scaled(body, 0.6), car),
        _tail_lights(cx, w, yb - 0.55 * h + 0.04 * p, 0.15 * p, night, car),
        Part([rect(cx - 0.2 * p, yb - 0.52 * p, cx + 0.2 * p, yb - 0.4 * p)], (225, 225, 215), car),
    ]


def truck_parts(rng, cx, yb, p, night):
    """A box truck seen from behind: dual wheels, chassis, tall cargo box with doors."""
    w, h = rng.uniform(2.3, 2.5) / 2 * p, rng.uniform(2.9, 3.7) * p
    box, truck = pick(rng, _TRUCK), SEM["truck"]
    seams = [rect(x - 0.03 * p, yb - h + 0.15 * p, x + 0.03 * p, yb - 0.9 * p)
             for x in (cx - 0.5 * w, cx, cx + 0.5 * w)]
    return [
        _shadow(cx, yb, w * 1.1, p),
        _wheels(cx, w, yb, yb - 0.6 * p, 0.4, truck),
        Part([rect(cx - w * 0.9, yb - 0.85 * p, cx + w * 0.9, yb - 0.45 * p)], (50, 50, 52), truck),
        Part([rect(cx - w, yb - h, cx + w, yb - 0.8 * p)], box, truck),
        Part(seams, scaled(box, 0.65), truck),
        _tail_lights(cx, w, yb - 1.1 * p, 0.18 * p, night, truck),
    ]


def bus_parts(rng, cx, yb, p, night):
    """A bus seen from behind: rounded shell, big rear window, destination sign, stripe."""
    w, h = rng.uniform(2.45, 2.6) / 2 * p, rng.uniform(2.9, 3.3) * p
    body, bus = pick(rng, _BUS), SEM["bus"]
    top, r = yb - h, 0.3 * p
    shell = np.array([[cx - w, yb - 0.3 * p], [cx + w, yb - 0.3 * p], [cx + w, top + r],
                      [cx + w - r, top], [cx - w + r, top], [cx - w, top + r]])
    return [
        _shadow(cx, yb, w * 1.1, p),
        _wheels(cx, w, yb, yb - 0.5 * p, 0.55, bus),
        Part([shell], body, bus),
        Part([rect(cx - w * 0.85, top + 0.6 * p, cx + w * 0.85, top + 1.5 * p)], GLASS, bus),
        Part([rect(cx - w * 0.6, top + 0.12 * p, cx + w * 0.6, top + 0.45 * p)], DARK, bus),
        Part([rect(cx - w * 0.45, top + 0.2 * p, cx + w * 0.45, top + 0.37 * p)], (255, 150, 0),
             bus, emit=night),
        Part([rect(cx - w, yb - 1.35 * p, cx + w, yb - 1.15 * p)], scaled(body, 0.55), bus),
        _tail_lights(cx, w, yb - 1.0 * p, 0.25 * p, night, bus),
        Part([rect(cx - w, yb - 0.45 * p, cx + w, yb - 0.3 * p)], DARK, bus),
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
        Part(bogies + couplers, DARK, train),
        Part(shells, pick(rng, _TRAIN), train),
        Part(windows, (250, 220, 150) if night else GLASS, train, emit=night),
        Part(stripe, (240, 200, 40), train),
    ]


def motorcycle_parts(rng, cx, yb, p, facing):
    """A motorcycle, side view facing ``facing`` (+1 right, -1 left): fat wheels, engine,
    tank and seat, fork and handlebar."""
    moto, f = SEM["motorcycle"], facing
    rear, front = (cx - 0.7 * p * f, yb - 0.32 * p), (cx + 0.7 * p * f, yb - 0.32 * p)
    body = np.array([[cx - 0.8 * p * f, yb - 0.62 * p], [cx + 0.3 * p * f, yb - 0.58 * p],
                     [cx + 0.5 * p * f, yb - 0.95 * p], [cx + 0.05 * p * f, yb - 0.98 * p],
                     [cx - 0.45 * p * f, yb - 0.82 * p]])
    return [
        Part([ellipse(*rear, 0.32 * p, 0.32 * p), ellipse(*front, 0.32 * p, 0.32 * p)], DARK,
             moto),
        Part([ellipse(*rear, 0.13 * p, 0.13 * p), ellipse(*front, 0.13 * p, 0.13 * p)],
             (150, 150, 155), moto),
        Part([rect(cx - 0.25 * p, yb - 0.62 * p, cx + 0.25 * p, yb - 0.28 * p)], (85, 85, 90),
             moto),
        Part([segment(front, (cx + 0.5 * p * f, yb - 1.05 * p), 0.08 * p)], (140, 140, 145), moto),
        Part([body], pick(rng, _CAR), moto),
        Part([segment((cx + 0.42 * p * f, yb - 1.05 * p), (cx + 0.62 * p * f, yb - 1.12 * p),
                      0.07 * p)], DARK, moto),
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
        Part([ellipse(*rear, r, r), ellipse(*front, r, r)], DARK, bike,
             holes=(ellipse(*rear, hole, hole), ellipse(*front, hole, hole))),
        Part(frame, pick(rng, CLOTHES, 20), bike),
        Part([segment(head, (cx + 0.32 * p * f, yb - 1.02 * p), tube)], DARK, bike),
    ]


def tractor_parts(rng, cx, yb, p, facing):
    """A farm tractor, side view ("other vehicle"): big rear wheel, hood, exhaust, glass cab.

    Its pixels are ignored (255) in the semantic map, as BDD100K does for other vehicles.
    """
    f, body = facing, pick(rng, _TRACTOR)
    rear, front = (cx - 0.9 * p * f, yb - 0.75 * p), (cx + 1.25 * p * f, yb - 0.45 * p)
    return [
        _shadow(cx, yb, 2.2 * p, p),
        Part([rect(cx - 0.5 * p * f, yb - 1.5 * p, cx + 1.8 * p * f, yb - 0.7 * p)], body,
             IGNORE_LABEL),
        Part([segment((cx + p * f, yb - 1.5 * p), (cx + p * f, yb - 2.4 * p), 0.1 * p),
              rect(cx - 1.6 * p * f, yb - 2.8 * p, cx - 0.2 * p * f, yb - 1.35 * p)], DARK,
             IGNORE_LABEL),
        Part([rect(cx - 1.5 * p * f, yb - 2.65 * p, cx - 0.3 * p * f, yb - 1.5 * p)],
             (150, 190, 210), IGNORE_LABEL),
        Part([rect(cx - 1.7 * p * f, yb - 2.95 * p, cx - 0.1 * p * f, yb - 2.78 * p)], body,
             IGNORE_LABEL),
        Part([ellipse(*rear, 0.75 * p, 0.75 * p), ellipse(*front, 0.45 * p, 0.45 * p)], DARK,
             IGNORE_LABEL),
        Part([ellipse(*rear, 0.32 * p, 0.32 * p), ellipse(*front, 0.2 * p, 0.2 * p)], body,
             IGNORE_LABEL),
    ]


# Builders of the vehicles that drive in a lane seen from behind, by det_20 category.
VEHICLES = {"car": car_parts, "truck": truck_parts, "bus": bus_parts}
