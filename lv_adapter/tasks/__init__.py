"""The tasks of the multi-task model, each one registration (see :mod:`lv_adapter.tasks.base`).

lv_adapter registers detection, semantic and drivable-area segmentation, in that order; a project
registers its own tasks when its package is imported. The core reads every task-specific fact
(classes, label keys, head slot, targets, postprocessing) from the registration.
"""
from lv_adapter.tasks.base import (  # noqa: F401
    IGNORE_LABEL,
    TASK_REGISTRY,
    Task,
    get_task,
    register_task,
    task_classes,
    task_names,
)
from lv_adapter.tasks.detection import DETECTION, DetectionTask
from lv_adapter.tasks.drivable import DRIVABLE, DrivableTask
from lv_adapter.tasks.masks import MaskTask, mask_task_names  # noqa: F401
from lv_adapter.tasks.semantic import SEMANTIC, SemanticTask

# Registration order is the tasks' canonical order (labeled_tasks, evaluators, tables).
for _task in (DetectionTask(), SemanticTask(), DrivableTask()):
    register_task(_task)
del _task

# The tasks lv_adapter itself registers: MODEL.TASKS' default (a project's tasks join a model
# only when its config names them).
BUILTIN_TASKS = (DETECTION, SEMANTIC, DRIVABLE)
