"""Building a config: detectron2's defaults, lv_adapter's and the imported projects' keys, a
config file, ``$LV_ADAPTER_SEED`` and command-line pairs, checked by :func:`validate_config`."""
import os

import torch
from detectron2.config import CfgNode, get_cfg

from lv_adapter.config.defaults import add_lv_adapter_config
from lv_adapter.config.validation import unknown_tasks_problem, validate_config
from lv_adapter.tasks import TASK_REGISTRY

# Environment variable that replaces the config file's SEED (the command line still wins): runs
# a whole test suite or a set of tool runs, subprocesses included, under another seed.
SEED_VARIABLE = "LV_ADAPTER_SEED"


def build_config(config_file, opts=()):
    """detectron2's defaults + lv_adapter's keys + ``config_file`` + ``$LV_ADAPTER_SEED`` (as
    ``SEED``, when set) + ``opts`` (KEY VALUE pairs).

    Without CUDA the model runs on the CPU whatever ``MODEL.DEVICE`` says, so that the same
    config file runs on a laptop; mixed precision (``SOLVER.AMP.ENABLED``) then is an error.
    Returns an unfrozen config, checked by :func:`validate_config`.
    """
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    for adder in _PROJECT_ADDERS:
        adder(cfg)
    _merge_file(cfg, config_file)
    if os.environ.get(SEED_VARIABLE):
        cfg.merge_from_list(["SEED", _seed_from_environment()])
    cfg.merge_from_list(_non_finite_as_floats(opts))
    validate_config(cfg)
    if not torch.cuda.is_available():
        if cfg.SOLVER.AMP.ENABLED:
            raise ValueError("SOLVER.AMP.ENABLED needs a CUDA device; set it False on the CPU")
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def _merge_file(cfg, config_file):
    """``cfg.merge_from_file``; a key of a task that is not registered (a project's head node,
    when the project was not imported) is reported as the unknown task it belongs to."""
    try:
        cfg.merge_from_file(config_file)
    except KeyError as e:
        tasks = CfgNode.load_yaml_with_base(config_file).get("MODEL", {}).get("TASKS", [])
        unknown = [task for task in tasks if task not in TASK_REGISTRY]
        if unknown:
            raise ValueError(f"{config_file}: {unknown_tasks_problem(unknown)}. "
                             f"({e.args[0]}: a key of those tasks)") from e
        raise


def flat_config(node, prefix=""):
    """A config as ``{"MODEL.WEIGHTS": value, ...}``: every leaf key under its full name."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):  # CfgNode is a dict
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _seed_from_environment():
    value = os.environ[SEED_VARIABLE]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${SEED_VARIABLE} is {value!r}; it must be an integer (a SEED)") from None


def _non_finite_as_floats(opts):
    """``opts`` with "nan" / "inf" values as floats: yacs would keep them as strings and refuse
    them as a type mismatch; as floats they reach :func:`validate_config`, which says why a
    non-finite number cannot work for that key."""
    opts = list(opts)
    for i in range(1, len(opts), 2):
        if isinstance(opts[i], str) and opts[i].strip().lower() in _NON_FINITE:
            opts[i] = float(opts[i])
    return opts


_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


# Config adders of the projects imported so far (projects/*): build_config runs them after
# lv_adapter's own, so a project's keys exist wherever its package is imported.
_PROJECT_ADDERS = []


def register_project_config(adder):
    """Make :func:`build_config` call ``adder(cfg)`` (a project's keys, with their defaults).

    A project calls this when its package is imported, next to registering its modules, so its
    configs load through every lv_adapter entry point (train_net.py, the tools). Registering the
    same adder again changes nothing. Returns ``adder`` (usable as a decorator).
    """
    if adder not in _PROJECT_ADDERS:
        _PROJECT_ADDERS.append(adder)
    return adder
