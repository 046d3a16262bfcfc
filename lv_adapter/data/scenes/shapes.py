"""Polygon primitives: every drawn shape is a Kx2 float array of (x, y) pixel coordinates.

Pure geometry: nothing here paints or touches a label map; :class:`~.canvas.Canvas` fills the
polygons.
"""
import numpy as np


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
