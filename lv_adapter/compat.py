"""The one place that knows how detectron2 versions differ.

Supported: detectron2 0.6 (what ``tools/setup_env.sh`` builds from PyPI's ``pb1-detectron2`` sdist,
without C++ ops) and detectron2 built from its main branch (what GPU users install from git).
"""
import contextlib
import importlib
import logging
import os
import sys

import detectron2
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lv_adapter import _detectron2_c_placeholder

DETECTRON2_VERSION = tuple(int(p) for p in detectron2.__version__.split(".")[:2] if p.isdigit())


def _ensure_compiled_ops_module():
    """Make ``detectron2._C`` importable; return True when it holds the real compiled ops.

    Without the compiled extension, ``import detectron2.layers`` fails at
    ``from detectron2 import _C``. Registering the placeholder lets every module import, and the
    ops that truly need C++ raise ``MissingCompiledOpError`` with what to install when called.
    """
    try:
        module = importlib.import_module("detectron2._C")
    except ImportError:
        module = _detectron2_c_placeholder
        sys.modules["detectron2._C"] = module
        detectron2._C = module
    return not getattr(module, "IS_PLACEHOLDER", False)


HAS_COMPILED_OPS = _ensure_compiled_ops_module()
if not HAS_COMPILED_OPS:
    # detectron2's main branch calls its rotated-box ops through torch.ops.detectron2; the copy
    # installed in detectron2 registers them itself, but older installed copies do not.
    _detectron2_c_placeholder.register_torch_ops(sys.modules["detectron2._C"])
# The class raised by the placeholder that is actually in use: the copy installed inside
# detectron2 by tools/setup_env.sh, or this package's own.
MissingCompiledOpError = getattr(
    sys.modules["detectron2._C"],
    "MissingCompiledOpError",
    _detectron2_c_placeholder.MissingCompiledOpError,
)

# Imported only now: detectron2.engine imports detectron2.layers, which needs detectron2._C.
# importlib, not `from ... import`: detectron2.engine re-exports a *function* named `launch`.
d2_defaults = importlib.import_module("detectron2.engine.defaults")
d2_launch = importlib.import_module("detectron2.engine.launch")
from detectron2.data import MetadataCatalog  # noqa: E402
from detectron2.utils import comm  # noqa: E402
from tabulate import tabulate  # noqa: E402


def launch(main_func, num_processes, num_machines=1, machine_rank=0, dist_url="auto", args=()):
    """detectron2's ``launch``, plus several processes on CPU-only machines (GLOO backend).

    detectron2 0.6 asserts CUDA in every worker; its main branch falls back to GLOO. Without
    CUDA this function spawns the workers itself, the same way on both versions.
    """
    world_size = num_machines * num_processes
    if world_size == 1 or torch.cuda.is_available():
        return d2_launch.launch(
            main_func, num_processes, num_machines, machine_rank, dist_url, args
        )
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("--dist-url auto only works on one machine; give tcp://HOST:PORT")
        dist_url = f"tcp://127.0.0.1:{d2_launch._find_free_port()}"
    mp.spawn(
        _cpu_worker,
        nprocs=num_processes,
        args=(main_func, world_size, num_processes, machine_rank, dist_url, args),
        daemon=False,
    )


def _cpu_worker(local_rank, main_func, world_size, num_per_machine, machine_rank, url, args):
    rank = machine_rank * num_per_machine + local_rank
    torch.set_num_threads(cpu_threads_per_process(num_per_machine))
    dist.init_process_group("gloo", init_method=url, world_size=world_size, rank=rank)
    # detectron2.utils.comm needs the group of the processes on this machine.
    for i in range(world_size // num_per_machine):
        group = dist.new_group(list(range(i * num_per_machine, (i + 1) * num_per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    comm.synchronize()
    main_func(*args)


def cpu_threads_per_process(num_per_machine):
    """Intra-op threads of each of ``num_per_machine`` CPU processes: the machine's cores shared
    out, unless OMP_NUM_THREADS says otherwise. Every process would otherwise start one thread per
    core, and N processes on N cores ran slower together than one alone (measured: 2 pseudo-label
    processes on 2 cores, 1.7 against 2.9 images/s)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // num_per_machine)


# Extra DistributedDataParallel arguments, set by `ddp_options`.
_DDP_OPTIONS = {}


@contextlib.contextmanager
def ddp_options(**kwargs):
    """Pass ``kwargs`` to the DistributedDataParallel wrappers created inside this block.

    DefaultTrainer.__init__ wraps the model with fixed arguments; this is how a trainer adds
    some (e.g. ``find_unused_parameters``) without copying that constructor.
    """
    saved = dict(_DDP_OPTIONS)
    _DDP_OPTIONS.update(kwargs)
    try:
        yield
    finally:
        _DDP_OPTIONS.clear()
        _DDP_OPTIONS.update(saved)


def _create_ddp_model_on_any_device(model, **kwargs):
    """detectron2's ``create_ddp_model``, which passes ``device_ids=[local rank]`` even for a CPU
    model; DistributedDataParallel needs ``device_ids=None`` there. Adds `ddp_options`."""
    kwargs = {**_DDP_OPTIONS, **kwargs}
    if comm.get_world_size() > 1 and "device_ids" not in kwargs:
        if next(model.parameters()).device.type == "cpu":
            kwargs["device_ids"] = None
    return _d2_create_ddp_model(model, **kwargs)


# DefaultTrainer looks create_ddp_model up in its own module at construction time.
_d2_create_ddp_model = d2_defaults.create_ddp_model
d2_defaults.create_ddp_model = _create_ddp_model_on_any_device


# detectron2 prints a histogram of boxes per class when it loads datasets, but only when the
# *first* record has "annotations", and then reads "annotations" of every record. Records that
# are not labeled for detection have none: its main branch raises KeyError, and 0.6 never gets
# that far (its np.int fails under NumPy 2, and it swallows the AttributeError).
d2_data_build = importlib.import_module("detectron2.data.build")
_d2_get_detection_dataset_dicts = d2_data_build.get_detection_dataset_dicts
# Logged where detectron2's own histogram goes (its logger writes the console and log.txt).
_histogram_logger = logging.getLogger("detectron2.data.build")
# The task name of lv_adapter.data's DETECTION: compat is imported before the data modules.
_DETECTION = "detection"


def get_detection_dataset_dicts(
    names, filter_empty=True, min_keypoints=0, proposal_files=None, check_consistency=True
):
    """detectron2's ``get_detection_dataset_dicts`` (same arguments), whose metadata check and class
    histogram run whenever *any* record is labeled for detection, on every detectron2 version.

    ``filter_empty`` (``DATALOADER.FILTER_EMPTY_ANNOTATIONS``) leaves out the images that have
    nothing to teach: labeled for detection only, without a non-crowd box. detectron2's own filter
    reads ``annotations`` of every record and fails on images not labeled for detection; an image
    with segmentation labels stays whatever its boxes.
    """
    dicts = _d2_get_detection_dataset_dicts(
        names, False, min_keypoints, proposal_files, check_consistency=False
    )
    names = [names] if isinstance(names, str) else list(names)
    if filter_empty and isinstance(dicts, list):
        dicts = filter_images_without_labels(dicts)
    if check_consistency and isinstance(dicts, list) and any("annotations" in d for d in dicts):
        try:
            class_names = MetadataCatalog.get(names[0]).thing_classes
            d2_data_build.check_metadata_consistency("thing_classes", names)
        except AttributeError:  # no class names registered: no histogram, as in detectron2
            return dicts
        log_class_histogram(dicts, class_names)
    return dicts


def filter_images_without_labels(dicts):
    """``dicts`` without the records labeled for detection only (``labeled_tasks``; a record
    without that key counts as detection-only when it has ``annotations``) whose boxes are all
    crowd boxes or none; logs how many were left out."""
    kept = [d for d in dicts if not _nothing_to_learn(d)]
    _histogram_logger.info(
        f"DATALOADER.FILTER_EMPTY_ANNOTATIONS: left out {len(dicts) - len(kept)} of {len(dicts)} "
        "images labeled for detection only and without a (non-crowd) box"
    )
    return kept


def _nothing_to_learn(record):
    tasks = set(record.get("labeled_tasks", [_DETECTION] if "annotations" in record else []))
    return tasks == {_DETECTION} and all(a.get("iscrowd", 0) for a in record.get("annotations", ()))


def log_class_histogram(dicts, class_names, columns=2):
    """Log a table of boxes per class over the records labeled for detection, ground-truth and
    pseudo boxes (records whose ``pseudo_tasks`` hold "detection") in separate columns.

    Args:
        dicts (list[dict]): dataset dicts; those with ``annotations`` are labeled for detection.
            Crowd boxes (``iscrowd`` 1: crowd and ignore regions) are not counted.
        class_names (list[str]): names of the ``category_id`` values 0..K-1.
        columns (int): (class, ground truth, pseudo) triples per table row.
    """
    labeled = [d for d in dicts if "annotations" in d]
    pseudo = [d for d in labeled if _DETECTION in d.get("pseudo_tasks", ())]
    truth = [d for d in labeled if _DETECTION not in d.get("pseudo_tasks", ())]
    gt_counts, pseudo_counts = _boxes_per_class(truth, class_names), _boxes_per_class(
        pseudo, class_names)
    cells = []
    for triple in zip(class_names, gt_counts, pseudo_counts):
        cells.extend(triple)
    cells += ["total", sum(gt_counts), sum(pseudo_counts)]
    width = 3 * columns
    rows = [cells[i : i + width] for i in range(0, len(cells), width)]
    table = tabulate(rows, headers=["class", "ground truth", "pseudo"] * columns,
                     tablefmt="pipe")
    _histogram_logger.info(
        f"Boxes per class in the {len(labeled)} of {len(dicts)} images labeled for detection "
        f"({len(truth)} ground truth, {len(pseudo)} pseudo labels; crowd and ignore regions not "
        f"counted):\n{table}"
    )


def _boxes_per_class(dicts, class_names):
    """Non-crowd boxes per ``category_id`` over ``dicts``; an id outside the classes raises."""
    counts = [0] * len(class_names)
    for d in dicts:
        for anno in d["annotations"]:
            if anno.get("iscrowd", 0):
                continue
            category = anno["category_id"]
            if not 0 <= category < len(class_names):
                raise ValueError(
                    f"{d.get('file_name', d.get('image_id'))}: category_id {category} is outside "
                    f"0..{len(class_names) - 1} ({len(class_names)} classes)"
                )
            counts[category] += 1
    return counts


# detectron2's loaders (build_detection_test_loader) call the function of their own module.
d2_data_build.get_detection_dataset_dicts = get_detection_dataset_dicts
detectron2.data.get_detection_dataset_dicts = get_detection_dataset_dicts


def _map_dataset_fallback_breaks(map_dataset_class):
    """True when ``map_dataset_class`` (detectron2's ``MapDataset``) cannot replace a sample
    its mapper dropped.

    detectron2 0.6 draws the replacement with ``random.sample`` from a set, which Python 3.11
    refuses (``TypeError: Population must be a sequence``); its main branch draws from a list.
    Probed by behaviour, not by version number, so a fixed release is left alone.
    """
    probe = map_dataset_class([None, 1], lambda x: x)  # item 0 maps to None: a fallback is drawn
    try:
        probe[0]
    except TypeError:
        return True
    return False


def _map_dataset_getitem(self, idx):
    """``MapDataset.__getitem__`` that draws a replacement for a dropped sample from a list.

    Same contract as detectron2's: a mapper that returns None drops that index from the pool of
    fallback candidates and another index is tried, with a warning from the third try on; an
    index that maps well returns to the pool. Raises when every index has been dropped, instead
    of looping on an empty pool.
    """
    index, tries = int(idx), 0
    while True:
        item = self._map_func(self._dataset[index])
        if item is not None:
            self._fallback_candidates.add(index)
            return item
        tries += 1
        self._fallback_candidates.discard(index)
        if not self._fallback_candidates:
            raise RuntimeError(
                f"every sample of the training set was dropped by the mapper (last: index "
                f"{index}); see the warnings above for the files and their problems"
            )
        index = self._rng.choice(sorted(self._fallback_candidates))
        if tries >= 3:
            logging.getLogger("detectron2.data.common").warning(
                f"Mapping index {idx} failed {tries} times; trying index {index} instead"
            )


def patch_map_dataset_fallback(map_dataset_class=None):
    """Install :func:`_map_dataset_getitem` in detectron2's ``MapDataset`` (or the class given)
    where its own fallback breaks (0.6 on Python 3.11), so that ``DATASETS.ON_BAD_SAMPLE skip``
    works; a no-op where the fallback works (detectron2's main branch)."""
    if map_dataset_class is None:
        from detectron2.data.common import MapDataset as map_dataset_class
    if map_dataset_class.__getitem__ is _map_dataset_getitem:
        return
    if _map_dataset_fallback_breaks(map_dataset_class):
        map_dataset_class.__getitem__ = _map_dataset_getitem


patch_map_dataset_fallback()


def end_failed_checkpoint_load(checkpointer):
    """Let a ``DetectionCheckpointer`` try another file after a load that raised.

    detectron2's main branch marks a load as in progress (``_parsed_url_during_load``), asserts
    at the start of each load that no other one is, and leaves the mark set when reading the
    file raises; 0.6 has no such mark. Without this, falling back to an older checkpoint fails
    on that assertion.
    """
    if getattr(checkpointer, "_parsed_url_during_load", None) is not None:
        checkpointer._parsed_url_during_load = None


def restart_train_loader(trainer, start_iter):
    """Make the training loader of ``trainer`` (detectron2's ``SimpleTrainer`` or a subclass)
    start at iteration ``start_iter``, if it can (``set_start_iter``; detectron2's own loaders
    cannot and are left alone).

    detectron2 0.6 makes the loader's iterator in ``SimpleTrainer.__init__``, before
    ``resume_or_load`` knows the start iteration: it is replaced here. Its main branch makes it
    at the first step (``_data_loader_iter_obj``): it is cleared here, in case one was made.
    """
    loader = trainer.data_loader
    if not hasattr(loader, "set_start_iter"):
        return
    loader.set_start_iter(start_iter)
    if hasattr(trainer, "_data_loader_iter_obj"):
        trainer._data_loader_iter_obj = None
    else:
        trainer._data_loader_iter = iter(loader)


def fcos_labels_images_without_boxes():
    """Whether detectron2's FCOS trains on an image without ground-truth boxes.

    Its main branch does (background everywhere; matched boxes returned as tensors); 0.6 does not
    (its ``match_anchors`` takes the maximum over an empty set; matched boxes are ``Boxes``). Both
    report version 0.6, so the method that 0.6 has and main renamed tells them apart.
    """
    from detectron2.modeling.meta_arch.fcos import FCOS

    return not hasattr(FCOS, "match_anchors")
