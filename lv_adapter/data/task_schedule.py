"""Which task each training iteration trains, for the "one task per iteration" co-training
strategies of the paper's table 1 (``DATALOADER.TASK_STRATEGY``).

* ``zeroing``: no schedule. Batches mix images of all tasks (drawn by ``DATALOADER.SAMPLER_TRAIN``);
  a task without labels in an image contributes no loss for it.
* ``uniform``: each iteration draws one task of ``MODEL.TASKS`` with equal probability.
* ``weighted``: ... with probability proportional to its number of labeled training images.
* ``round_robin``: the tasks of ``MODEL.TASKS`` in turn.

The task of iteration ``i`` is a pure function of ``(seed, i)``: every training process computes
the same sequence without talking to the others, and a resumed run continues it.
"""
import numpy as np

__all__ = ["STRATEGIES", "ZEROING", "TaskSchedule", "task_probabilities"]

ZEROING = "zeroing"

# Tasks are drawn in blocks of this many iterations, each block from its own generator seeded
# with (seed, block): replaying the tasks before a resumed iteration costs one draw per block.
_BLOCK = 1024
# Keeps the task draws apart from other streams seeded with the same seed.
_STREAM = 0


def _uniform(image_counts):
    return [1.0 / len(image_counts)] * len(image_counts)


def _weighted(image_counts):
    total = float(sum(image_counts))
    return [count / total for count in image_counts]


# Per-task strategy -> the task probabilities from the tasks' labeled image counts; None: in turn.
_PROBABILITIES = {"uniform": _uniform, "weighted": _weighted, "round_robin": None}
STRATEGIES = (ZEROING, *_PROBABILITIES)


def task_probabilities(strategy, image_counts):
    """Probability of each task under a random ``strategy``; None for ``round_robin``.

    Args:
        strategy (str): one of ``STRATEGIES`` other than ``zeroing``.
        image_counts (list[int]): labeled training images of each task, all > 0.

    Returns:
        list[float] or None: one probability per task, summing to 1.
    """
    if strategy not in _PROBABILITIES:
        raise ValueError(f"DATALOADER.TASK_STRATEGY {strategy!r} has no task schedule; "
                         f"the per-task strategies are {STRATEGIES[1:]}")
    probabilities = _PROBABILITIES[strategy]
    return None if probabilities is None else probabilities(image_counts)


class TaskSchedule:
    """The task index of every iteration: ``probabilities`` drawn, or in turn when None."""

    def __init__(self, num_tasks, probabilities=None, seed=0):
        """
        Args:
            num_tasks (int): tasks are numbered 0..num_tasks-1 (the order of ``MODEL.TASKS``).
            probabilities (list[float] or None): draw probability of each task; None: in turn.
            seed (int): the same seed gives the same sequence.
        """
        if probabilities is not None and len(probabilities) != num_tasks:
            raise ValueError(f"{len(probabilities)} probabilities for {num_tasks} tasks")
        self.num_tasks = num_tasks
        self.probabilities = None if probabilities is None else np.asarray(probabilities)
        self.seed = int(seed)

    def tasks(self, start, stop):
        """Task indices of iterations ``start..stop-1``: int64 array of length stop - start."""
        if self.probabilities is None:
            return np.arange(start, stop, dtype=np.int64) % self.num_tasks
        first, last = start // _BLOCK, (stop - 1) // _BLOCK + 1
        blocks = [self._block(b) for b in range(first, max(first, last))]
        if not blocks:
            return np.zeros(0, dtype=np.int64)
        offset = first * _BLOCK
        return np.concatenate(blocks)[start - offset: stop - offset]

    def task(self, iteration):
        return int(self.tasks(iteration, iteration + 1)[0])

    def draws_before(self, iteration):
        """How many of the iterations 0..iteration-1 trained each task: [num_tasks] int64."""
        return np.bincount(self.tasks(0, iteration), minlength=self.num_tasks)

    def _block(self, block):
        rng = np.random.default_rng([self.seed, _STREAM, block])
        return rng.choice(self.num_tasks, size=_BLOCK, p=self.probabilities).astype(np.int64)
