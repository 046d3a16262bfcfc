"""Which head each task of the multi-task model runs: a registry, named per task in the config.

    MODEL.HEADS.DETECTION: "SparseRCNNHead"     MODEL.HEADS.SEMANTIC: "MaskFormerHead"
                                                MODEL.HEADS.DRIVABLE: "MaskFormerHead"

Heads are swapped for experiments such as the paper's table 8 (convolutional heads, see
``projects/ConvHeads``). A registered head class says which tasks it can serve: by name in
``TASKS``, or by kind in ``TASK_KINDS`` (``(MaskTask,)``: every task labeled by masks, a
project's included), and is built as ``cls(cfg, input_shape, task)``; it is called the way its
task's registration says (``run_head`` in ``lv_adapter/tasks/``):

* detection: ``head(features, image_sizes, targets)`` with per-image targets ``{"labels": [T],
  "boxes": [T, 4] absolute XYXY}``, returning ``(list[Instances], losses)``;
* segmentation: ``head(features, targets)`` with per-image targets ``{"labels": [T], "masks":
  [T, H, W] bool}`` at the padded batch size, returning ``([B, K, H, W] scores, losses)``.

In training the results may be None. Every head has ``loss_keys()`` (the keys its losses take,
logged as zeros when no image of a batch is labeled for the task); a head whose criterion
all-reduces loss normalizers across processes exposes them as ``criterion.normalizers``.
"""
from detectron2.utils.registry import Registry

from lv_adapter.tasks import get_task
from lv_adapter.utils.registry import lookup

__all__ = ["TASK_HEAD_REGISTRY", "build_task_head", "feature_shapes"]

TASK_HEAD_REGISTRY = Registry("TASK_HEAD")
TASK_HEAD_REGISTRY.__doc__ = "Task heads of the multi-task model, named by MODEL.HEADS.<TASK>."


def build_task_head(cfg, input_shape, task):
    """The head ``cfg.MODEL.HEADS.<TASK>`` names, built for ``task`` on the FPN ``input_shape``."""
    key = f"MODEL.HEADS.{task.upper()}"
    name = cfg.MODEL.HEADS.get(task.upper())
    if not name:
        raise ValueError(f"{key} is not set: name the head of the {task} task")
    cls = lookup(TASK_HEAD_REGISTRY, name, key)
    if not _serves(cls, task):
        served = list(getattr(cls, "TASKS", ())) + [
            f"every {kind.__name__}" for kind in getattr(cls, "TASK_KINDS", ())]
        raise ValueError(f"{key} is {name!r}, a head for {served}, not for {task}")
    return cls(cfg, input_shape, task)


def _serves(cls, task):
    return task in getattr(cls, "TASKS", ()) or isinstance(
        get_task(task), tuple(getattr(cls, "TASK_KINDS", ())))


def feature_shapes(input_shape, names, key):
    """{name: ShapeSpec} of the FPN maps ``names`` a head reads, in that order; a ValueError
    naming the config ``key`` when the backbone does not give one of them."""
    missing = [name for name in names if name not in input_shape]
    if missing:
        raise ValueError(f"{key} names {missing}, which the backbone does not give (it gives "
                         f"{sorted(input_shape)})")
    return {name: input_shape[name] for name in names}
