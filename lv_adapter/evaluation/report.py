"""One line per headline metric, named by task: what the demo and the benchmarks print."""
import math

from lv_adapter.tasks import get_task, task_names


def headline_values(results):
    """``[(label, value)]`` like ``("det AP50", 12.3)`` for the headline metrics present in
    ``results``: each registered task's ``headline_metrics`` under its ``result_key``, named by
    its ``short_name``.

    Args:
        results (dict): detectron2 evaluation results, e.g. ``{"bbox": {"AP50": 12.3}, ...}``;
            for several datasets (``{dataset: {...}}``) pass one dataset's results.
    """
    values = []
    for task in map(get_task, task_names()):
        for metric in task.headline_metrics:
            value = results.get(task.result_key, {}).get(metric)
            if value is not None:
                values.append((f"{task.short_name} {metric}", value))
    return values


def _text(value):
    return "nan" if math.isnan(value) else f"{value:.1f}"


def metric_lines(results):
    """Lines like ``det AP50 12.3`` for the headline metrics of ``results`` (see
    :func:`headline_values`)."""
    return [f"{label} {_text(value)}" for label, value in headline_values(results)]


def comparison_lines(eager, exported):
    """Lines like ``det AP50 12.34 eager, 12.34 exported: equal`` for the headline metrics of
    two evaluations of one model (PyTorch and its export). Equal to two decimals: less than
    0.005 apart (two values 1e-5 apart may still print 28.67 and 28.66), or both NaN."""
    lines = []
    for label, value in headline_values(eager):
        other = dict(headline_values(exported)).get(label, float("nan"))
        same = abs(value - other) < 0.005 or (math.isnan(value) and math.isnan(other))
        lines.append(f"{label} {value:.2f} eager, {other:.2f} exported: "
                     f"{'equal' if same else 'DIFFERENT'}")
    return lines
