"""Task sampling: how often each training image is drawn, given the tasks it is labeled for.

In BDD100K most images are labeled for detection and drivable area and only a tenth for semantic
segmentation, so a uniformly sampled batch gives the semantic head few labeled images per step.
``TaskRepeatFactorSampler`` (``DATALOADER.SAMPLER_TRAIN``) draws an image
``max_t DATALOADER.TASK_REPEAT_FACTORS[t]`` times per epoch on average, the maximum over the
tasks ``t`` it is labeled for, with detectron2's ``RepeatFactorTrainingSampler`` doing the
stochastic rounding. Factors of 1 everywhere give the uniform ``TrainingSampler``.
"""
import torch
from detectron2.data.samplers import RepeatFactorTrainingSampler

from lv_adapter.tasks import get_task

SAMPLER_NAME = "TaskRepeatFactorSampler"


def task_repeat_factors(dataset_dicts, task_factors):
    """Per-image repeat factors.

    Args:
        dataset_dicts (list[dict]): records with ``labeled_tasks`` (and ``file_name``).
        task_factors (dict[str, float]): task name -> factor >= 1; tasks left out count 1.

    Returns:
        Tensor: [len(dataset_dicts)] float32, factor of each image.
    """
    for task, factor in task_factors.items():
        get_task(task, key="DATALOADER.TASK_REPEAT_FACTORS")
        if not factor >= 1.0:  # also refuses NaN
            raise ValueError(f"DATALOADER.TASK_REPEAT_FACTORS.{task.upper()} must be >= 1, "
                             f"got {factor}")
    factors = []
    for record in dataset_dicts:
        tasks = record.get("labeled_tasks")
        if not tasks:
            raise ValueError(f"{record.get('file_name', record)}: a training record without "
                             "labeled_tasks cannot be task-sampled")
        factors.append(max(task_factors.get(task, 1.0) for task in tasks))
    return torch.tensor(factors, dtype=torch.float32)


def build_task_sampler(cfg, dataset_dicts):
    """The training sampler ``cfg.DATALOADER.SAMPLER_TRAIN`` names, if it is this module's.

    Returns:
        RepeatFactorTrainingSampler or None: None for detectron2's own sampler names, which
        ``build_detection_train_loader`` builds itself.
    """
    if cfg.DATALOADER.SAMPLER_TRAIN != SAMPLER_NAME:
        return None
    factors = cfg.DATALOADER.TASK_REPEAT_FACTORS
    task_factors = {name.lower(): float(value) for name, value in factors.items()}
    # seed None: all processes share one random seed (detectron2 seeds it from cfg.SEED).
    return RepeatFactorTrainingSampler(task_repeat_factors(dataset_dicts, task_factors))
