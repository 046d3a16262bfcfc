"""BDD100K lane marking as a fourth task of lv_adapter's multi-task model.

Importing this package registers the ``lane`` task (:mod:`lv_lanes.task`), its dense head
(:mod:`lv_lanes.dense_head`, besides lv_adapter's MaskFormer head) and config key, the datasets
``bdd100k_lane_{train,val}`` and lanes in the multi-task sets (:mod:`lv_lanes.datasets`) under the
datasets root (``DETECTRON2_DATASETS``, default ``datasets``); the project's train_net.py does
that first. The official encoding and benchmark are :mod:`lv_lanes.encoding` and
:mod:`lv_lanes.metric`.
"""
import os

from lv_adapter.tasks import register_task
from lv_lanes.task import LANE, LaneTask

register_task(LaneTask())

# These need the task registered: the datasets, the config keys of its head node, the head.
from lv_lanes import config  # noqa: E402, F401  (registers MODEL.LANE_HEAD.BACKGROUND_WEIGHT)
from lv_lanes.datasets import register_all_lanes  # noqa: E402
from lv_lanes.dense_head import LaneDenseHead  # noqa: E402, F401  (registers)

register_all_lanes(os.environ.get("DETECTRON2_DATASETS", "datasets"))

__all__ = ["LANE", "LaneTask"]
