"""The one place that knows how detectron2 versions differ.

Supported: detectron2 0.6 (what ``tools/setup_env.sh`` builds from PyPI's ``pb1-detectron2`` sdist,
without C++ ops) and detectron2 built from its main branch (what GPU users install from git).
"""
import contextlib
import importlib
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
from detectron2.utils import comm  # noqa: E402


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
    dist.init_process_group("gloo", init_method=url, world_size=world_size, rank=rank)
    # detectron2.utils.comm needs the group of the processes on this machine.
    for i in range(world_size // num_per_machine):
        group = dist.new_group(list(range(i * num_per_machine, (i + 1) * num_per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    comm.synchronize()
    main_func(*args)


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
