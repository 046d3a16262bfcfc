"""One line per headline metric, named by task: what the demo and the benchmarks print."""
import math

# (results key, metric, printed task name)
HEADLINE_METRICS = (
    ("bbox", "AP", "det"),
    ("bbox", "AP50", "det"),
    ("bbox", "AP75", "det"),
    ("sem_seg", "mIoU", "sem"),
    ("sem_seg", "pACC", "sem"),
    ("drivable_seg", "mIoU", "drivable"),
    ("drivable_seg", "mIoU_bdd100k", "drivable"),
    ("drivable_seg", "pACC", "drivable"),
)


def metric_lines(results):
    """Lines like ``det AP50 12.3`` for the headline metrics present in ``results``.

    Args:
        results (dict): detectron2 evaluation results, e.g. ``{"bbox": {"AP50": 12.3}, ...}``;
            for several datasets (``{dataset: {...}}``) pass one dataset's results.
    """
    lines = []
    for key, metric, task in HEADLINE_METRICS:
        value = results.get(key, {}).get(metric)
        if value is not None:
            text = "nan" if math.isnan(value) else f"{value:.1f}"
            lines.append(f"{task} {metric} {text}")
    return lines
