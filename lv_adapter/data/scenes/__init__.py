"""Procedural BDD100K-style road scenes: one RGB image and its label maps, painted together.

Modules, from the bottom up: :mod:`.shapes` (polygons) and :mod:`.palette` (colours);
:mod:`.canvas` (the image and its label maps, painted back to front); :mod:`.road` (perspective
geometry); :mod:`.background` and :mod:`.ground` (the backdrop and the road surface);
:mod:`.vehicles`, :mod:`.people` and :mod:`.street_furniture` (things, as parts);
:mod:`.composer` (placing and drawing things); :mod:`.lighting` (time of day and noise); and
:mod:`.scene`, whose :func:`draw_scene` draws a whole scene.
"""
from lv_adapter.data.scenes.ground import MARKINGS
from lv_adapter.data.scenes.scene import Scene, draw_scene

__all__ = ["MARKINGS", "Scene", "draw_scene"]
