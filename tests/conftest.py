"""Shared fixtures: a small generated BDD100K-format sample set, registered under the official
names (DETECTRON2_DATASETS points at it before lv_adapter registers them).

Every test is deterministic. The tiny configs fix ``SEED`` (0), and each test starts with
Python's, numpy's and torch's global generators seeded, so that its result does not depend on
which tests ran before it. Two options probe that:

    pytest --seed N     # every config (in this process and in the tools it starts) and every
                        # test's generators take seed N instead of 0 ($LV_ADAPTER_SEED)
    pytest --reverse    # run the tests in reversed order (module fixtures still run once)

`make test` runs the suite in two worker processes (pytest-xdist, ``-n 2 --dist loadfile``: a
module's tests share a worker, so its module fixtures are built once); seeding per test keeps the
results independent of which worker runs what.
"""
import contextlib
import importlib
import logging
import os
import random
import shutil
import sys
import tempfile

import numpy as np
import pytest
import torch

# The suite runs on the CPU (tiny configs; outputs compared with CPU references). On a GPU machine
# the models would go to CUDA (detectron2's default MODEL.DEVICE) and differ by TF32 rounding, so
# CUDA is hidden unless LV_ADAPTER_TEST_CUDA=1 asks for the CUDA-only tests (mixed precision).
if os.environ.get("LV_ADAPTER_TEST_CUDA") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""

# `make test` runs two pytest-xdist workers (one per core of the CI machine): each, and every tool
# it starts, computes with one thread, since two workers of two threads each would fight over the
# cores (the variables reach the tools this worker starts).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)

SAMPLE_ROOT = tempfile.mkdtemp(prefix="lv-adapter-tests-")
os.environ["DETECTRON2_DATASETS"] = SAMPLE_ROOT

import lv_adapter  # noqa: E402,F401  (registers datasets; installs the detectron2._C placeholder)
from lv_adapter.data.sample import write_sample_bdd100k  # noqa: E402

from lv_adapter.config import SEED_VARIABLE  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pytest_addoption(parser):
    parser.addoption("--seed", type=int, default=None,
                     help=f"seed of every config (sets ${SEED_VARIABLE}) and of each test's "
                          "random generators (default: the configs' SEED, 0)")
    parser.addoption("--reverse", action="store_true", help="run the tests in reversed order")


def pytest_configure(config):
    seed = config.getoption("--seed")
    if seed is not None:
        os.environ[SEED_VARIABLE] = str(seed)  # before any config is built; children inherit it


def pytest_report_header(config):
    return f"lv_adapter: seed {run_seed()}" + (", reversed order" if config.getoption(
        "--reverse") else "")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--reverse"):
        items.reverse()
        return
    # The modules that measure (learning, speed, the whole pipeline) take most of the suite's
    # time: they go first, so that under pytest-xdist (`make test`, with --no-loadscope-reorder)
    # the short modules fill the other process's time at the end, instead of one long module
    # running alone while the other process idles.
    slow = {item.module.__name__ for item in items if item.get_closest_marker("measurement")}
    items.sort(key=lambda item: item.module.__name__ not in slow)  # stable: else as collected


def run_seed():
    """The seed of this run: ``--seed`` (via $LV_ADAPTER_SEED), else 0 as in the tiny configs."""
    return int(os.environ.get(SEED_VARIABLE) or 0)


def _seed_generators():
    seed = run_seed()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.fixture(autouse=True, scope="module")
def _seeded_module_fixtures():
    """A module's fixtures (autouse ones come first in their scope) start from the same global
    random state, whatever ran before the module."""
    _seed_generators()


@pytest.fixture(autouse=True)
def _seeded_generators():
    """Each test starts from the same global random state, whatever ran before it."""
    _seed_generators()


def subprocess_env(**variables):
    """This process's environment plus ``variables``, for a tool run as a subprocess: the
    repository goes first on PYTHONPATH and what was there stays after it (`make test-d2main`
    puts detectron2's main branch there, and the child must import the same detectron2)."""
    path = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    return dict(os.environ, **variables, PYTHONPATH=path)


@pytest.fixture(scope="session")
def sample_root():
    """The datasets root holding ``bdd100k/``: 16 generated 128x72 scenes (seed 0)."""
    if not os.path.isdir(os.path.join(SAMPLE_ROOT, "bdd100k")):
        write_sample_bdd100k(SAMPLE_ROOT, num_images=16, width=128, height=72, seed=0)
    return SAMPLE_ROOT


@contextlib.contextmanager
def freed_dataset_names(names):
    """Unregister ``names`` for the body (a test registers its own datasets under them), then
    remove what the body registered and restore what was registered before."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    names = list(names)
    saved = {n: (DatasetCatalog[n], MetadataCatalog.get(n)) for n in names if n in DatasetCatalog}
    _unregister(names)
    try:
        yield
    finally:
        _unregister(names)
        for name, (loader, metadata) in saved.items():
            DatasetCatalog.register(name, loader)
            MetadataCatalog[name] = metadata


def _unregister(names):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    for name in names:
        DatasetCatalog.pop(name, None)
        MetadataCatalog.pop(name, None)


@contextlib.contextmanager
def project_imported(project, package):
    """Import the package of ``projects/<project>`` (which registers its tasks, heads, config keys
    and datasets) for the body, then restore the task and head registries, the config adders, the
    dataset catalogs and the multi-task sources and forget the package: the tests after it see
    the core alone, as a user of the root train_net.py does. Yields the package."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from lv_adapter.config import build
    from lv_adapter.data.datasets import builtin
    from lv_adapter.modeling.task_heads import TASK_HEAD_REGISTRY
    from lv_adapter.tasks import TASK_REGISTRY

    stores = (TASK_REGISTRY._obj_map, TASK_HEAD_REGISTRY._obj_map, DatasetCatalog,
              MetadataCatalog, builtin._TASK_SOURCES)
    saved = [(store, dict(store)) for store in stores]
    adders = list(build._PROJECT_ADDERS)
    path = list(sys.path)
    sys.path.append(os.path.join(REPO, "projects", project))  # after the repository's root
    try:
        yield importlib.import_module(package)
    finally:
        for store, content in saved:
            store.clear()
            store.update(content)
        build._PROJECT_ADDERS[:] = adders
        sys.path[:] = path
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


@contextlib.contextmanager
def umask(mask):
    """Run the body under the file-creation mask ``mask``."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(autouse=True)
def _log_streams_outlive_the_test():
    """detectron2's setup_logger (cached: once per argument set) binds its console handlers to
    the ``sys.stdout`` of the test that first called it, pytest's capture stream, which is closed
    when that test ends; later records would print "Logging error ... I/O operation on closed
    file". Rebind such handlers to the process's own stdout (pytest still captures its fd)."""
    yield
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        for handler in logger.handlers:
            stream = getattr(handler, "stream", None)
            console = isinstance(handler, logging.StreamHandler) and not isinstance(
                handler, logging.FileHandler)
            if console and getattr(stream, "closed", False):
                handler.stream = sys.__stdout__  # not setStream: it flushes the closed one


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SAMPLE_ROOT, ignore_errors=True)
