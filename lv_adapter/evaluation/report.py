"""One line per headline metric, named by task: what the demo and the benchmarks print."""
import math

from lv_adapter.tasks import get_task, task_names


def metric_lines(results):
    """Lines like ``det AP50 12.3`` for the headline metrics present in ``results``: each
    registered task's ``headline_metrics`` under its ``result_key``, named by its ``short_name``.

    Args:
        results (dict): detectron2 evaluation results, e.g. ``{"bbox": {"AP50": 12.3}, ...}``;
            for several datasets (``{dataset: {...}}``) pass one dataset's results.
    """
    lines = []
    for task in map(get_task, task_names()):
        for metric in task.headline_metrics:
            value = results.get(task.result_key, {}).get(metric)
            if value is not None:
                text = "nan" if math.isnan(value) else f"{value:.1f}"
                lines.append(f"{task.short_name} {metric} {text}")
    return lines
