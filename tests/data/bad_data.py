"""Helpers for data tests that damage a copy of the sample set, register it, or train on it."""
import contextlib
import functools
import logging
import os
import shutil

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.engine import default_argument_parser

from conftest import REPO
from lv_adapter.data.datasets.bdd100k import register_loader
from lv_adapter.data.datasets.builtin import load_multitask, official_paths
from lv_adapter.data.errors import set_default_policy
from lv_adapter.tasks import BUILTIN_TASKS

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


def copy_sample(sample_root, tmp_path):
    """A datasets root under ``tmp_path`` holding a copy of the sample ``bdd100k/`` tree."""
    root = tmp_path / "datasets"
    shutil.copytree(os.path.join(sample_root, "bdd100k"), root / "bdd100k")
    return root


def train_paths(root):
    return official_paths(str(root), "train")


@contextlib.contextmanager
def registered(name, root):
    """Register the multi-task train set of the datasets root ``root`` as ``name``."""
    p = train_paths(root)
    register_loader(name, functools.partial(load_multitask, str(root), "train"), BUILTIN_TASKS,
                    json_file=p["det_json"], sem_seg_root=p["sem_seg_root"],
                    drivable_root=p["drivable_root"])
    try:
        yield name
    finally:
        DatasetCatalog.pop(name, None)
        MetadataCatalog.pop(name, None)
        reset_process_state()


def reset_process_state():
    """Undo what train_net.setup and the tools change for the whole process (bad-sample policy,
    logger set-up), for the tests that follow."""
    set_default_policy("raise")
    # setup routes the package logger to log.txt as detectron2 does (propagate False); let
    # later tests' caplog see the package's records again.
    logging.getLogger("lv_adapter").propagate = True


def train_args(output_dir, *opts):
    """train_net arguments: the tiny config (its seed), CPU, no final evaluation, then ``opts``."""
    argv = ["--config-file", TINY, "OUTPUT_DIR", str(output_dir), "MODEL.DEVICE", "cpu",
            "DATASETS.TEST", "()"]
    return default_argument_parser().parse_args(argv + [str(o) for o in opts])


def truncate(path, keep=0.5):
    """Cut ``path`` to ``keep`` of its bytes (a JPEG loses its end marker)."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])
    return str(path)


def read_log(output_dir):
    with open(os.path.join(output_dir, "log.txt"), encoding="utf-8") as f:
        return f.read()
