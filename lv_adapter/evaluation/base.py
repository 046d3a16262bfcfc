"""What every task evaluator shares: the ground truth by image, and the evaluator base class
that skips unlabeled images and gathers results from every process."""
import logging
import os

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.evaluation import DatasetEvaluator
from detectron2.utils import comm

from lv_adapter.data.pseudo_labels import PSEUDO_TASKS_KEY, ground_truth_tasks
from lv_adapter.tasks import task_classes

__all__ = ["GroundTruth", "TaskEvaluator", "file_stem"]

# Exports go to <output_dir>/bdd100k/..., the layout the official toolkit's commands are given;
# another dataset names its own folder in its metadata (``export_folder``).
EXPORT_FOLDER = "bdd100k"


class GroundTruth:
    """The dataset dicts of a registered dataset by ``image_id``, loaded at first use.

    The test-time mapper passes no labels through, so evaluators look every image up here.
    Loading waits for the first lookup so that building an evaluator reads no file; one instance
    can be shared by several evaluators of the same dataset so that it is loaded once.
    """

    def __init__(self, dataset_name):
        self.dataset_name = dataset_name
        self._records = None

    def _load(self):
        if self._records is None:
            dicts = DatasetCatalog.get(self.dataset_name)
            self._records = {d["image_id"]: d for d in dicts}
        return self._records

    def record(self, image_id):
        """The dataset dict of ``image_id``; KeyError naming the image and dataset if absent."""
        records = self._load()
        if image_id not in records:
            raise KeyError(f"image {image_id!r} is not in dataset {self.dataset_name!r}")
        return records[image_id]

    def labeled_tasks(self):
        """The set of tasks that at least one image of the dataset has ground truth for."""
        return {task for d in self._load().values() for task in ground_truth_tasks(d)}

    def num_labeled(self, task):
        """How many images of the dataset have ground truth for ``task``."""
        return sum(task in ground_truth_tasks(d) for d in self._load().values())

    def num_pseudo(self, task):
        """How many images of the dataset have pseudo labels (never scored) for ``task``."""
        return sum(task in d.get(PSEUDO_TASKS_KEY, ()) for d in self._load().values())


class TaskEvaluator(DatasetEvaluator):
    """Base of the evaluators of one task of a multi-task dataset.

    Images that are not labeled for the task are skipped (they are neither empty ground truth
    nor a source of false positives). Pseudo labels are never scored: an image whose label of
    the task is a pseudo label (in its ``pseudo_tasks``) is skipped like an unlabeled one, so a
    dataset with pseudo labels is scored on its ground truth only. Each process accumulates its
    own images; ``evaluate`` gathers them on the main process, which alone computes, writes and
    returns results (the other processes return ``{}``, as detectron2's evaluators do).

    Args:
        dataset_name (str): a registered dataset whose dicts carry ``labeled_tasks``.
        task (str): the task evaluated (a name registered in :mod:`lv_adapter.tasks`).
        output_dir (str or None): exports go to ``<output_dir>/<export folder>/``, the dataset
            metadata's ``export_folder`` (default "bdd100k"); None writes nothing.
        ground_truth (GroundTruth or None): shared ground truth of ``dataset_name``.
    """

    def __init__(self, dataset_name, task, output_dir=None, ground_truth=None):
        self._dataset_name = dataset_name
        self._task = task
        # The task's class names in label-id order, from the dataset's metadata.
        metadata = MetadataCatalog.get(dataset_name)
        self._classes = task_classes(metadata, task)
        self._export_folder = metadata.get("export_folder", EXPORT_FOLDER)
        self._output_dir = output_dir
        self._ground_truth = ground_truth or GroundTruth(dataset_name)
        self._logger = logging.getLogger(__name__)
        self.reset()

    def _labeled(self, inputs, outputs):
        """Yield ``(dataset dict, model output)`` of the images labeled for the task."""
        for inp, output in zip(inputs, outputs):
            image_id = inp.get("image_id") or file_stem(inp["file_name"])
            record = self._ground_truth.record(image_id)
            if self._task in ground_truth_tasks(record):
                yield record, output

    def _gather(self, local):
        """List of every process's ``local`` on the main process; None on the others."""
        comm.synchronize()
        parts = comm.gather(local, dst=0)
        return parts if comm.is_main_process() else None

    def _export_path(self, *names):
        return os.path.join(self._output_dir, self._export_folder, *names)

    def _log_coverage(self, num_evaluated):
        """Warn when images labeled for the task were never processed (their labels don't count)."""
        total = self._ground_truth.num_labeled(self._task)
        self._logger.info(f"Evaluated {self._task} on {num_evaluated} images")
        num_pseudo = self._ground_truth.num_pseudo(self._task)
        if num_pseudo:
            self._logger.info(f"Skipped the {self._task} pseudo labels of {num_pseudo} images of "
                              f"{self._dataset_name!r}: only ground truth is scored")
        if num_evaluated < total:
            self._logger.warning(
                f"Only {num_evaluated} of the {total} images of {self._dataset_name!r} labeled "
                f"for {self._task} were evaluated; the metrics cover those images only"
            )


def file_stem(file_name):
    """The base name of ``file_name`` without its extension: a BDD100K image_id."""
    return os.path.splitext(os.path.basename(file_name))[0]
