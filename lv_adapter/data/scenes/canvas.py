"""The shared painting state: one RGB image and its label maps, painted together.

Everything is painted back to front (painter's algorithm) into a :class:`Canvas`, which keeps for
every pixel the colour (``img``), the semantic class (``sem``, Cityscapes train id), the drivable
class (``drv``), the id of the thing that painted it (``owner``), whether it gives light
(``emit``) and which painted road marking is visible there (``marking``: 0 none, k >= 1 the
kind ``ground.MARKINGS[k - 1]``). Background is filled straight into these maps
(:meth:`Canvas.fill`); :mod:`.ground` paints the markings into the marking map after filling
the ground, and whatever is filled or drawn later hides them. Things are drawn from
:class:`Part` lists (:meth:`Canvas.draw`) and their det_20 labels are read off their own pixels
and the owner map (:meth:`Canvas.labels`), so the image, the masks and the boxes cannot
disagree.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from lv_adapter.tasks.drivable import DRIVABLE_BACKGROUND
from lv_adapter.tasks.semantic import SEM_SEG_CLASSES

SEM = {name: index for index, name in enumerate(SEM_SEG_CLASSES)}
MIN_OBJECT_PX = 3  # things narrower or shorter than this are neither drawn nor labeled
_SHIFT = 4  # fractional bits of the coordinates handed to cv2.fillPoly


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


def _window(mask, y0, x0):
    """The (rows, columns) slices of the full-size maps that a region's mask covers."""
    return slice(y0, y0 + mask.shape[0]), slice(x0, x0 + mask.shape[1])


class Canvas:
    """HxWx3 RGB image plus HxW semantic class, drivable class, owner id, 'emits light' and
    road marking kind (see the module docstring)."""

    def __init__(self, height, width):
        self.height, self.width = height, width
        self.img = np.zeros((height, width, 3), np.uint8)
        self.sem = np.full((height, width), SEM["sky"], np.uint8)
        self.drv = np.full((height, width), DRIVABLE_BACKGROUND, np.uint8)
        self.owner = np.full((height, width), -1, np.int16)
        self.emit = np.zeros((height, width), np.uint8)
        self.marking = np.zeros((height, width), np.uint8)
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
        ground is drivable, so they also set the drivable class to background, and they hide
        the road markings under them. Shadows only darken: the marking stays visible.
        """
        mask = region[0]
        win = _window(*region)
        if part.sem is None:
            img = self.img[win]
            img[mask] = (img[mask] * part.shade).astype(np.uint8)
            return
        self.img[win][mask] = part.color
        self.sem[win][mask] = part.sem
        self.drv[win][mask] = DRIVABLE_BACKGROUND
        self.owner[win][mask] = oid
        self.emit[win][mask] = part.emit
        self.marking[win][mask] = 0

    def fill(self, polys, color, sem=None, drv=DRIVABLE_BACKGROUND, emit=False, disjoint=False):
        """Paint background polygons (owned by no thing; drawn before every thing).

        Straight into the full-size maps: no mask is needed, and big facades stay cheap.
        ``sem`` None paints colour (and light, when ``emit``) only, e.g. windows on a facade.
        With ``sem`` set the polygons also hide the road markings under them: facades, tree
        bands and walls are filled after the ground and its markings.
        """
        fixed = [np.rint(p * (1 << _SHIFT)).astype(np.int32) for p in polys]
        targets = [(self.img, color)] + ([(self.emit, 1)] if emit else [])
        if sem is not None:
            targets += [(self.sem, sem), (self.drv, drv), (self.marking, 0)]
            targets += [] if emit else [(self.emit, 0)]
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
        own pixels), occluded (a later thing covers some of them), truncated, crowd, light, and
        oid (the thing's value in the ``owner`` map: its visible pixels are ``owner == oid``).
        """
        return [self._label(thing) for thing in self.things
                if thing.category is not None and thing.regions]

    def _label(self, thing):
        """The label dict of one drawn, labeled ``thing`` (see :meth:`labels`)."""
        box, occluded = [np.inf, np.inf, -1, -1], False
        for mask, y0, x0 in thing.regions:
            rows, cols = np.flatnonzero(mask.any(1)) + y0, np.flatnonzero(mask.any(0)) + x0
            box = [min(box[0], cols[0]), min(box[1], rows[0]),
                   max(box[2], cols[-1]), max(box[3], rows[-1])]
            win = _window(mask, y0, x0)
            occluded = occluded or bool((self.owner[win][mask] != thing.oid).any())
        return {"category": thing.category, "box": tuple(int(v) for v in box),
                "occluded": occluded, "truncated": thing.truncated,
                "crowd": thing.crowd, "light": thing.light, "oid": thing.oid}
