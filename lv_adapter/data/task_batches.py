"""The training loader of the per-task co-training strategies (``DATALOADER.TASK_STRATEGY``
uniform, weighted, round_robin): each iteration one task (``TaskSchedule``), and a batch of
images labeled for it.

* An image of a batch drawn for task ``t`` keeps the labels of ``t`` only (``keep_tasks`` before
  the mapper): one task trains per iteration, as in the paper's baselines, also where an image
  has several tasks' labels (the Full setting).
* Each task has its own pool of images, visited in shuffled epochs. The k-th batch of task ``t``
  takes the next ``SOLVER.IMS_PER_BATCH`` images of that task's endless shuffled sequence, and
  process ``r`` of ``W`` takes its ``IMS_PER_BATCH / W`` of them: processes train different images
  of the same task.
* Tasks, epochs and orders are pure functions of ``(DATALOADER.TASK_SEED, iteration)``. A loader
  told to start at iteration ``s`` (``set_start_iter``, on resume) replays the tasks of iterations
  0..s-1 to know each task's position and continues exactly as an uninterrupted run.
* Workers keep the order: a map-style DataLoader with a batch sampler returns batches in the
  order the sampler gave them, however many workers map them.
* No aspect-ratio grouping (``DATALOADER.ASPECT_RATIO_GROUPING``): a batch's images are fixed by
  the schedule, not by their shapes. BDD100K's images all share one shape (1280x720), so this
  changes nothing there; for a set that mixes landscape and portrait images a warning says that
  batches mix them (more padding, same results).

Each batch puts the index of its task in ``MODEL.TASKS`` into the event storage as
``train_task`` (metrics.json, TensorBoard).
"""
import logging

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data.build import trivial_batch_collator, worker_init_reset_seed
from detectron2.data.common import DatasetFromList, MapDataset
from detectron2.utils import comm
from detectron2.utils import events

from lv_adapter.data.splits import keep_tasks
from lv_adapter.data.task_schedule import TaskSchedule, task_probabilities

__all__ = ["TASK_SCALAR", "TaskBatchLoader", "TaskBatchSampler", "build_task_batch_loader",
           "task_pools"]

logger = logging.getLogger(__name__)

# Event-storage scalar: the index in MODEL.TASKS of the task each iteration trained.
TASK_SCALAR = "train_task"
# Keeps the image orders apart from the task draws seeded with the same seed.
_IMAGE_STREAM = 1


def task_pools(dicts, tasks, strategy="uniform"):
    """The records of each task, each restricted to that task's labels.

    Args:
        dicts (list[dict]): training records with ``labeled_tasks``.
        tasks (list[str]): ``MODEL.TASKS``.
        strategy (str): named in the error.

    Returns:
        list[list[dict]]: per task of ``tasks``, copies of its labeled records.
    """
    pools = []
    for task in tasks:
        pool = [keep_tasks(d, [task]) for d in dicts if task in d.get("labeled_tasks", ())]
        if not pool:
            raise ValueError(
                f"DATALOADER.TASK_STRATEGY {strategy!r} draws a batch of each task of MODEL.TASKS, "
                f"but no training image is labeled for {task!r}; drop it from MODEL.TASKS or "
                f"add its labels to DATASETS.TRAIN"
            )
        pools.append(pool)
    return pools


class _ImageOrder:
    """The images 0..size-1 of one task's pool as an endless sequence of shuffled epochs."""

    def __init__(self, size, seed, task_index):
        self.size, self.seed, self.task_index = size, seed, task_index
        self._epoch, self._order = None, None

    def take(self, start, count):
        """Image indices at positions ``start..start+count-1`` of the sequence."""
        return [self._at(position) for position in range(start, start + count)]

    def _at(self, position):
        epoch, offset = divmod(position, self.size)
        if epoch != self._epoch:
            rng = np.random.default_rng([self.seed, _IMAGE_STREAM, self.task_index, epoch])
            self._epoch, self._order = epoch, rng.permutation(self.size)
        return int(self._order[offset])


class TaskBatchSampler(torch.utils.data.Sampler):
    """Endless per-process batches of ``(task index, image index)`` keys, one task per batch."""

    def __init__(self, schedule, pool_sizes, batch_size, rank=0, world_size=1, start_iter=0):
        """
        Args:
            schedule (TaskSchedule): the task of each iteration.
            pool_sizes (list[int]): images of each task's pool.
            batch_size (int): images per batch of this process.
            rank, world_size (int): this process among the training processes.
            start_iter (int): the iteration of the first batch.
        """
        self.schedule, self.pool_sizes, self.batch_size = schedule, list(pool_sizes), batch_size
        self.rank, self.world_size, self.start_iter = rank, world_size, start_iter

    def __iter__(self):
        draws = self.schedule.draws_before(self.start_iter)
        orders = [_ImageOrder(size, self.schedule.seed, k)
                  for k, size in enumerate(self.pool_sizes)]
        iteration, chunk = self.start_iter, 256
        while True:
            for k in self.schedule.tasks(iteration, iteration + chunk):
                # draw c of task k: the global batch c, this process's slice of it
                first = (int(draws[k]) * self.world_size + self.rank) * self.batch_size
                yield [(int(k), i) for i in orders[k].take(first, self.batch_size)]
                draws[k] += 1
            iteration += chunk


class _TaskPools(torch.utils.data.Dataset):
    """Item ``(k, i)``: image ``i`` of task ``k``'s pool, mapped. A sample the mapper drops is
    replaced from the same task's pool (each pool is its own detectron2 ``MapDataset``)."""

    def __init__(self, pools, mapper):
        self.pools = [MapDataset(DatasetFromList(pool, copy=False), mapper) for pool in pools]

    def __len__(self):
        return sum(len(pool) for pool in self.pools)

    def __getitem__(self, key):
        task_index, image_index = key
        return self.pools[task_index][image_index]


class TaskBatchLoader:
    """Iterable of per-process batches (lists of model inputs), one task per iteration."""

    def __init__(self, data_loader, tasks):
        """
        Args:
            data_loader (DataLoader): over ``_TaskPools`` with a ``TaskBatchSampler``.
            tasks (list[str]): ``MODEL.TASKS``; task indices refer to it.
        """
        self.data_loader, self.tasks = data_loader, list(tasks)

    def set_start_iter(self, start_iter):
        """Start at ``start_iter`` (resume); takes effect for iterators made after this call."""
        self.data_loader.batch_sampler.start_iter = start_iter

    def __iter__(self):
        # A generator: nothing runs (and no worker starts) until the first batch is asked for.
        for batch in self.data_loader:
            task = _batch_task(batch)
            if events._CURRENT_STORAGE_STACK:  # inside training (no public "is there one")
                storage = events.get_event_storage()
                storage.put_scalar(TASK_SCALAR, self.tasks.index(task), smoothing_hint=False)
            yield batch


def _batch_task(batch):
    found = {tuple(x["labeled_tasks"]) for x in batch}
    if len(found) != 1 or len(next(iter(found))) != 1:
        raise RuntimeError(f"a per-task batch holds images labeled for {sorted(found)}; the "
                           f"mapper must pass each record's labeled_tasks on")
    return next(iter(found))[0]


def _loader_from_config(cfg, dicts, mapper):
    world_size = comm.get_world_size()
    total = cfg.SOLVER.IMS_PER_BATCH
    if total % world_size:
        raise ValueError(f"SOLVER.IMS_PER_BATCH ({total}) must be divisible by the number of "
                         f"training processes ({world_size})")
    return {
        "dicts": dicts, "mapper": mapper, "tasks": list(cfg.MODEL.TASKS),
        "strategy": cfg.DATALOADER.TASK_STRATEGY, "batch_size": total // world_size,
        "seed": cfg.DATALOADER.TASK_SEED, "num_workers": cfg.DATALOADER.NUM_WORKERS,
        "rank": comm.get_rank(), "world_size": world_size,
    }


@configurable(from_config=_loader_from_config)
def build_task_batch_loader(dicts, mapper, *, tasks, strategy, batch_size, seed=0,
                            num_workers=0, rank=0, world_size=1):
    """The per-task training loader.

    Args:
        dicts (list[dict]): training records with ``labeled_tasks``.
        mapper (callable): record -> model input (``MultiTaskDatasetMapper``).
        tasks (list[str]): ``MODEL.TASKS``.
        strategy (str): uniform, weighted or round_robin.
        batch_size (int): images per batch of this process (IMS_PER_BATCH / world size).
        seed (int): ``DATALOADER.TASK_SEED``.
        num_workers (int): DataLoader worker processes.
        rank, world_size (int): this process among the training processes.

    Returns:
        TaskBatchLoader: starts at iteration 0 until ``set_start_iter``.
    """
    pools = task_pools(dicts, tasks, strategy)
    sizes = [len(pool) for pool in pools]
    _warn_about_mixed_orientations(dicts)
    probabilities = task_probabilities(strategy, sizes)  # raises for zeroing and unknown names
    schedule = TaskSchedule(len(tasks), probabilities, seed)
    _log_strategy(strategy, tasks, sizes, probabilities, batch_size, world_size)
    data_loader = torch.utils.data.DataLoader(
        _TaskPools(pools, mapper),
        batch_sampler=TaskBatchSampler(schedule, sizes, batch_size, rank, world_size),
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        worker_init_fn=worker_init_reset_seed,
    )
    return TaskBatchLoader(data_loader, tasks)


def _warn_about_mixed_orientations(dicts):
    sized = [d for d in dicts if "width" in d and "height" in d]
    landscape = sum(d["width"] >= d["height"] for d in sized)
    if 0 < landscape < len(sized):
        logger.warning(
            f"{landscape} landscape and {len(sized) - landscape} portrait training images: the "
            "per-task strategies do not group batches by aspect ratio, so batches mix them "
            "(more padding, same results)"
        )


def _log_strategy(strategy, tasks, sizes, probabilities, batch_size, world_size):
    if probabilities is None:
        share = "in turn: " + " -> ".join(tasks)
    else:
        share = ", ".join(f"{t} {p:.3f}" for t, p in zip(tasks, probabilities))
    images = ", ".join(f"{t} {n}" for t, n in zip(tasks, sizes))
    logger.info(
        f"Co-training strategy {strategy!r} (DATALOADER.TASK_STRATEGY): one task per iteration, "
        f"task probabilities {share}; labeled images {images}; {batch_size} images per process "
        f"x {world_size} processes; each image keeps the labels of its batch's task only. The "
        f"event storage's {TASK_SCALAR!r} is the index of the iteration's task in {tasks}."
    )
