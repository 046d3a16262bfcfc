"""Placing things in the scene: where each kind of thing stands, which placements are refused,
how many labeled things a scene holds, and the far-to-near drawing order.

The :class:`Composer` asks the builders of :mod:`.vehicles`, :mod:`.people` and
:mod:`.street_furniture` for parts at ground points of the :class:`~.road.Road`, queues them with
their det_20 categories, and finally draws them through :meth:`~.canvas.Canvas.draw`, which
writes every map of the canvas (image, semantic, drivable, owner, light) and the boxes.
"""
import numpy as np

from lv_adapter.data.scenes.canvas import MIN_OBJECT_PX
from lv_adapter.data.scenes.people import crowd_parts, pedestrian_parts, rider_joints, rider_parts
from lv_adapter.data.scenes.road import LANE_M
from lv_adapter.data.scenes.street_furniture import (
    TRAFFIC_LIGHT_COLORS,
    street_lamp_parts,
    traffic_light_parts,
    traffic_sign_parts,
    tree_parts,
)
from lv_adapter.data.scenes.vehicles import (
    VEHICLES,
    bicycle_parts,
    motorcycle_parts,
    tractor_parts,
    train_parts,
)

OTHER_VEHICLE = "other vehicle"
MAX_LABELS = 12
_KINDS = ("car", "truck", "bus", "pedestrian", "cyclist", "traffic light", "traffic sign")
_KIND_P = (0.42, 0.07, 0.05, 0.18, 0.1, 0.09, 0.09)


def _overlap(a, b):
    """Intersection of boxes (x0, y0, x1, y1) over the smaller one's area (0 when apart)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return w * h / max(smaller, 1e-6)


class Composer:
    """Places things on the road and sidewalks, then draws them far to near.

    Each placing method returns the number of labels it added (0 when refused, see :meth:`add`).
    """

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
        return self.add(s, [(VEHICLES[kind](self.rng, cx, yb, p, self.night), kind, {})])

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
        parts = crowd_parts(rng, [self.ground(uk, sk) for sk, uk in members])
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
        joints = rider_joints(cx, yb, p, f, motor)
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
        if self.rng.random() < 0.6:
            self._street_lamps(side)
        if self.rng.random() < (0.4 if city else 0.8):
            self._trees(side, city)

    def _street_lamps(self, side):
        """A row of street lamps at the curb of ``side``, their arms reaching over the road."""
        rng, road = self.rng, self.road
        u = -0.4 if side < 0 else road.right_u + 0.4
        for z in np.arange(rng.uniform(5, 20), 150, rng.uniform(18, 35)):
            x, yb, p = self.ground(u, road.s_at(z))
            lamp = street_lamp_parts(x, yb, p, -side, self.night)
            self.add(road.s_at(z), [(lamp, None, {})], movable=False)

    def _trees(self, side, city):
        """A row of trees: on the sidewalk of ``side`` in a city, beyond it elsewhere."""
        rng, road = self.rng, self.road
        u = road.outer_u(side) + side * (-0.8 if city else rng.uniform(0.5, 2.0))
        for z in np.arange(rng.uniform(4, 15), 120, rng.uniform(8, 20)):
            x, yb, p = self.ground(u, road.s_at(z))
            self.add(road.s_at(z), [(tree_parts(rng, x, yb, p), None, {})], movable=False)


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
        if kind in VEHICLES:
            placed += composer.vehicle(kind)
        else:
            placed += getattr(composer, kind.replace(" ", "_"))()
    for side, city in zip((-1, 1), sides):
        composer.furniture(side, city)
