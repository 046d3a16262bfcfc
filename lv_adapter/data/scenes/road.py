"""Perspective geometry of the road: where a ground point or an upright plane lands in the image.

A flat road seen from a dashboard camera. A ground point ``u`` metres right of the road's left
edge at depth parameter ``s`` (0 on the horizon, 1 on the bottom row; ``s`` is inversely
proportional to the distance) lies on row ``hy + s * (H - hy)``, and one metre there spans
``ppm * s`` pixels. Sizes are in metres, so every resolution shows the same scene. Coordinates
are in pixels, with pixel centres on integers.

Pure geometry: paints nothing and writes no label map (see :mod:`.ground` for the road surface).
"""
import numpy as np

LANE_M = 3.5  # lane width in metres


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
