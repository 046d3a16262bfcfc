"""Config keys of lv_adapter, added to a detectron2 ``CfgNode`` by :func:`add_lv_adapter_config`."""
from lv_adapter.data.datasets.categories import TASKS


def add_lv_adapter_config(cfg):
    """Add every lv_adapter key, with its default, to ``cfg`` (in place)."""
    _add_task_config(cfg)
    _add_data_config(cfg)


def _add_task_config(cfg):
    # Which heads the model has: any non-empty subset of TASKS. One task = that task's teacher.
    cfg.MODEL.TASKS = list(TASKS)


def _add_data_config(cfg):
    # "raise": any unusable file or record stops with an error naming it.
    # "skip": training drops such samples with a warning and a running count in the log.
    cfg.DATASETS.ON_BAD_SAMPLE = "raise"
