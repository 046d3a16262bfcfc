"""Checks of a whole config: :func:`validate_config` refuses values that the model would
otherwise accept silently, or that cannot work together."""
import math

from detectron2.data import DatasetCatalog, MetadataCatalog

from lv_adapter.data.task_schedule import STRATEGIES, ZEROING
from lv_adapter.tasks import DETECTION, TASK_REGISTRY, MaskTask, task_names


def validate_config(cfg):
    """Raise a ValueError naming every config key whose value cannot work together with the
    others, or that the model would use without complaint but wrongly.
    """
    problems = _task_problems(cfg) + _hidden_dim_problems(cfg) + _task_strategy_problems(cfg)
    problems += _class_count_problems(cfg) + _threshold_problems(cfg)
    if problems:
        raise ValueError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


def unknown_tasks_problem(unknown):
    """What to say of ``MODEL.TASKS`` naming the unregistered tasks ``unknown``."""
    return (f"MODEL.TASKS has unknown tasks {unknown}; registered tasks: "
            f"{', '.join(task_names())} (a project's tasks are registered when its package is "
            f"imported: run the project's train_net.py)")


def _task_problems(cfg):
    tasks = list(cfg.MODEL.TASKS)
    twice = sorted({task for task in tasks if tasks.count(task) > 1})
    problems = [f"MODEL.TASKS lists {task!r} twice" for task in twice]
    unknown = [task for task in tasks if task not in TASK_REGISTRY]
    if unknown:
        problems.append(unknown_tasks_problem(unknown))
    for key, weight in cfg.MODEL.TASK_WEIGHTS.items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            problems.append(f"MODEL.TASK_WEIGHTS.{key} is {weight!r}; it must be a number >= 0")
    return problems


def _threshold_problems(cfg):
    """The pseudo-label thresholds are scores or shares of a pixel's scores: numbers in [0, 1]."""
    problems = []
    for key, value in cfg.PSEUDO_LABELS.items():
        if key.endswith("_THRESH") and not (
                isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
            problems.append(f"PSEUDO_LABELS.{key} is {value!r}; it must be a number in [0, 1]")
    return problems


def _class_count_problems(cfg):
    """Each head's class count against the classes of every registered train and test dataset
    (a mismatch would train or score the wrong classes, or fail deep inside a loss)."""
    problems = []
    for name in dict.fromkeys(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)):
        if name not in DatasetCatalog:
            continue  # detectron2 says so when the dataset is loaded
        metadata = MetadataCatalog.get(name)
        for task in _registered_tasks(cfg):
            classes, count = task.classes_of(metadata), task.num_classes(cfg)
            if len(classes) != count:
                key = task.class_metadata_key
                source = "" if metadata.get(key, None) is not None else (
                    f", BDD100K's: its metadata names none under {key!r}")
                problems.append(
                    f"MODEL.{task.head_node}.NUM_CLASSES is {count} but dataset {name!r} has "
                    f"{len(classes)} {task.name} classes ({', '.join(classes)}{source}); set it "
                    f"to {len(classes)}"
                )
    return problems


def _task_strategy_problems(cfg):
    """DATALOADER.TASK_STRATEGY: a known name; the per-task ones choose the images themselves."""
    strategy = cfg.DATALOADER.TASK_STRATEGY
    if strategy not in STRATEGIES:
        return [f"DATALOADER.TASK_STRATEGY is {strategy!r}; it must be one of {STRATEGIES}"]
    if strategy == ZEROING:
        return []
    problems = []
    if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
        problems.append(
            f"DATALOADER.SAMPLER_TRAIN {cfg.DATALOADER.SAMPLER_TRAIN!r} conflicts with "
            f"DATALOADER.TASK_STRATEGY {strategy!r}: that strategy draws each iteration's task and "
            f"images itself; use SAMPLER_TRAIN TrainingSampler, or TASK_STRATEGY {ZEROING!r} to "
            f"sample mixed batches with {cfg.DATALOADER.SAMPLER_TRAIN}"
        )
    if not (isinstance(cfg.DATALOADER.TASK_SEED, int) and cfg.DATALOADER.TASK_SEED >= 0):
        problems.append(f"DATALOADER.TASK_SEED is {cfg.DATALOADER.TASK_SEED!r}; it must be an "
                        f"integer >= 0")
    return problems


def _hidden_dim_problems(cfg):
    """Sizes the heads need to agree with: the FPN width, their head count, the position code."""
    problems = []
    tasks = set(cfg.MODEL.TASKS)
    sparse = cfg.MODEL.SPARSE_RCNN
    if DETECTION in tasks:
        # RoI features (FPN width) and proposal features meet in the dynamic convolutions.
        fpn = "fpn" in cfg.MODEL.BACKBONE.NAME.lower()
        if fpn and sparse.HIDDEN_DIM != cfg.MODEL.FPN.OUT_CHANNELS:
            problems.append(
                f"MODEL.SPARSE_RCNN.HIDDEN_DIM ({sparse.HIDDEN_DIM}) must equal "
                f"MODEL.FPN.OUT_CHANNELS ({cfg.MODEL.FPN.OUT_CHANNELS}): the detection head pools "
                f"FPN features into proposal features of that size; change one of them"
            )
        problems += _heads_problems("MODEL.SPARSE_RCNN", sparse)
    for task in _registered_tasks(cfg):
        if isinstance(task, MaskTask):
            node = task.head_node
            problems += _heads_problems(f"MODEL.{node}", cfg.MODEL[node], position_code=True)
    return problems


def _registered_tasks(cfg):
    """The registered tasks of MODEL.TASKS (an unknown one: the model refuses it by name)."""
    return [TASK_REGISTRY.get(name) for name in cfg.MODEL.TASKS if name in TASK_REGISTRY]


def _heads_problems(prefix, node, position_code=False):
    """HIDDEN_DIM against NHEADS (and 4, with a sine position code) of one head's node."""
    problems = []
    if node.HIDDEN_DIM % node.NHEADS:
        problems.append(
            f"{prefix}.HIDDEN_DIM ({node.HIDDEN_DIM}) must be a multiple of {prefix}.NHEADS "
            f"({node.NHEADS}): attention splits the width among the heads"
        )
    if position_code and node.HIDDEN_DIM % 4:
        problems.append(
            f"{prefix}.HIDDEN_DIM ({node.HIDDEN_DIM}) must be a multiple of 4: the sine "
            f"position code splits the width into y, x and sin, cos"
        )
    return problems
