"""Colour helpers and the RGB palettes shared by several drawers.

Colours are RGB tuples of ints. Random variation comes from the caller's numpy Generator, so a
palette pick consumes random numbers exactly where the drawer calls it. Paints nothing itself.
"""
import numpy as np

GLASS = (45, 55, 70)  # windows and windscreens
DARK = (22, 22, 24)  # tyres, bumpers, housings
CLOTHES = ((200, 40, 40), (40, 60, 160), (230, 230, 230), (30, 30, 30), (60, 140, 70),
           (230, 180, 40), (130, 60, 140))  # also bicycle frames


def jitter(rng, colour, amount=15):
    """``colour`` (RGB) with each channel moved by up to ``amount``; tuple of 3 ints."""
    moved = np.asarray(colour) + rng.integers(-amount, amount + 1, 3)
    return tuple(int(c) for c in np.clip(moved, 0, 255))


def pick(rng, palette, amount=15):
    """A jittered colour drawn from ``palette``."""
    return jitter(rng, palette[int(rng.integers(len(palette)))], amount)


def scaled(colour, factor):
    """``colour`` with every channel multiplied by ``factor`` (clipped to 255)."""
    return tuple(int(min(255, c * factor)) for c in colour)
