"""People as lists of :class:`~.canvas.Part`: walking pedestrians, crowds of them, and riders
sitting on a motorcycle or a bicycle.

Builders take the ground contact point (cx, yb) in pixels (a rider: its joints) and ``p`` pixels
per metre there, and return the parts back to front. They paint nothing themselves:
:meth:`~.canvas.Canvas.draw` writes the parts into the image, the semantic map (person, rider),
the drivable map (background) and the owner map.
"""
import numpy as np

from lv_adapter.data.scenes.canvas import SEM, Part
from lv_adapter.data.scenes.palette import CLOTHES, pick, scaled
from lv_adapter.data.scenes.shapes import ellipse, segment

_SKIN = ((240, 200, 170), (200, 150, 110), (140, 95, 60), (90, 60, 40))
_TROUSERS = ((30, 35, 60), (20, 20, 20), (150, 130, 100), (90, 90, 95))
_HAIR = ((22, 22, 24), (120, 80, 40), (200, 170, 90))
# Rider poses: joint name -> (forward, up) metres from the vehicle's ground contact point.
_MOTO_RIDER = {"hip": (-0.15, 0.98), "knee": (0.22, 0.88), "foot": (0.15, 0.45),
               "shoulder": (0.05, 1.58), "hand": (0.55, 1.1), "head": (0.12, 1.76)}
_BIKE_RIDER = {"hip": (-0.12, 0.95), "knee": (0.15, 0.72), "foot": (0.02, 0.3),
               "shoulder": (0.1, 1.55), "hand": (0.36, 1.02), "head": (0.17, 1.74)}


def pedestrian_parts(rng, cx, yb, p):
    """A walking person, front or back view: legs, torso, arms, head and hair."""
    h = rng.uniform(1.55, 1.9) * p
    person, stride = SEM["person"], rng.uniform(-0.18, 0.18) * p
    hip, shoulder = yb - 0.5 * h, yb - 0.81 * h
    shirt = pick(rng, CLOTHES, 20)
    torso = np.array([[cx - 0.22 * p, shoulder], [cx + 0.22 * p, shoulder],
                      [cx + 0.17 * p, hip + 0.05 * p], [cx - 0.17 * p, hip + 0.05 * p]])
    return [
        Part([segment((cx - 0.08 * p, hip), (cx - 0.08 * p - stride, yb), 0.15 * p),
              segment((cx + 0.08 * p, hip), (cx + 0.08 * p + stride, yb), 0.15 * p)],
             pick(rng, _TROUSERS, 10), person),
        Part([torso], shirt, person),
        Part([segment((cx - 0.21 * p, shoulder), (cx - 0.26 * p + stride / 2, hip), 0.09 * p),
              segment((cx + 0.21 * p, shoulder), (cx + 0.26 * p - stride / 2, hip), 0.09 * p)],
             scaled(shirt, 0.85), person),
        Part([ellipse(cx, yb - 0.925 * h, 0.1 * p, 0.125 * p)], pick(rng, _SKIN, 10), person),
        Part([ellipse(cx, yb - 0.96 * h, 0.1 * p, 0.07 * p)], pick(rng, _HAIR, 10), person),
    ]


def crowd_parts(rng, feet):
    """The pedestrians standing at ``feet`` ((cx, yb, p) each, back to front) as one part list."""
    return [part for foot in feet for part in pedestrian_parts(rng, *foot)]


def rider_joints(cx, yb, p, facing, motor):
    """Joints (name -> (x, y) pixels) of a rider on a motorcycle (``motor``) or a bicycle whose
    ground contact point is (cx, yb), facing ``facing`` (+1 right, -1 left)."""
    pose = _MOTO_RIDER if motor else _BIKE_RIDER
    return {name: (cx + fwd * p * facing, yb - up * p) for name, (fwd, up) in pose.items()}


def rider_parts(rng, joints, p):
    """A rider on a bike, side view; ``joints`` maps hip, knee, foot, shoulder, hand and head
    to (x, y) pixels (see :func:`rider_joints`)."""
    rider, j = SEM["rider"], joints
    jacket = pick(rng, CLOTHES, 20)
    return [
        Part([segment(j["hip"], j["knee"], 0.17 * p), segment(j["knee"], j["foot"], 0.13 * p)],
             pick(rng, _TROUSERS, 10), rider),
        Part([segment(j["hip"], j["shoulder"], 0.36 * p)], jacket, rider),
        Part([segment(j["shoulder"], j["hand"], 0.1 * p)], scaled(jacket, 0.8), rider),
        Part([ellipse(*j["head"], 0.14 * p, 0.15 * p)], pick(rng, CLOTHES, 20), rider),
    ]
