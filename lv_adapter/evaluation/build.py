"""The evaluator of a multi-task model on a (partially labeled) BDD100K dataset."""
from detectron2.data import MetadataCatalog
from detectron2.evaluation import DatasetEvaluators

from lv_adapter.evaluation.base import GroundTruth
from lv_adapter.tasks import get_task, task_names

__all__ = ["build_multitask_evaluator"]


def build_multitask_evaluator(cfg_or_tasks, dataset_name, output_folder=None):
    """Combine the evaluators of the tasks the model has AND the dataset labels.

    Args:
        cfg_or_tasks: a config (its ``MODEL.TASKS`` are the model's tasks), an iterable of task
            names, or one task name.
        dataset_name (str): a registered dataset. Its labeled tasks are ``metadata.tasks``, or,
            when the metadata has none, the union of its dicts' ``labeled_tasks``.
        output_folder (str or None): exports go to ``<output_folder>/bdd100k/``.

    Returns:
        DatasetEvaluators: one evaluator per task in registration order, sharing one lazily loaded
        copy of the dataset dicts. Results keys: ``bbox``, ``sem_seg``, ``drivable_seg``.

    Raises:
        ValueError: an unknown task name, or no task both in the model and in the dataset.
    """
    model_tasks = _model_tasks(cfg_or_tasks)
    ground_truth = GroundTruth(dataset_name)
    labeled = MetadataCatalog.get(dataset_name).get("tasks", None)
    if labeled is None:
        labeled = ground_truth.labeled_tasks()
    tasks = [task for task in task_names() if task in model_tasks and task in set(labeled)]
    if not tasks:
        raise ValueError(
            f"nothing to evaluate: the model's tasks {sorted(model_tasks)} and the tasks labeled "
            f"by dataset {dataset_name!r} {sorted(labeled)} have none in common"
        )
    return DatasetEvaluators(
        [
            get_task(task).build_evaluator(dataset_name, output_folder, ground_truth)
            for task in tasks
        ]
    )


def _model_tasks(cfg_or_tasks):
    """The set of task names given by a config, an iterable of names, or one name."""
    if hasattr(cfg_or_tasks, "MODEL"):
        tasks = cfg_or_tasks.MODEL.TASKS
    elif isinstance(cfg_or_tasks, str):
        tasks = [cfg_or_tasks]
    else:
        tasks = list(cfg_or_tasks)
    unknown = [task for task in tasks if task not in task_names()]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; registered tasks: {list(task_names())}")
    return set(tasks)
