"""The training set of a config: loaded, counted per task, checked before training starts, and
its loader."""
import logging

from detectron2.data import MetadataCatalog, build_detection_train_loader
from detectron2.utils import comm

from lv_adapter import compat
from lv_adapter.data.datasets.bdd100k import format_task_counts
from lv_adapter.data.pseudo_labels import PSEUDO_TASKS_KEY, check_pseudo_tasks
from lv_adapter.data.samplers import build_task_sampler
from lv_adapter.data.task_batches import build_task_batch_loader
from lv_adapter.data.task_schedule import ZEROING
from lv_adapter.data.validation import find_bad_records
from lv_adapter.tasks import get_task, mask_task_names

__all__ = [
    "build_train_loader", "check_files", "check_trained_tasks_are_labeled", "load_train_dicts",
]

logger = logging.getLogger(__name__)


def build_train_loader(cfg, mapper):
    """The training loader of ``cfg``: mixed batches (``DATALOADER.TASK_STRATEGY`` zeroing, drawn
    by ``DATALOADER.SAMPLER_TRAIN``) or one task per iteration (the other strategies).

    Args:
        mapper (callable): dataset dict -> model input.
    """
    # Loaded here (not inside detectron2's builder): the samplers need each labeled_tasks.
    dicts = load_train_dicts(cfg)  # also counts and checks the tasks' labels
    if cfg.DATALOADER.TASK_STRATEGY == ZEROING:
        # detectron2's own sampler names give None: its builder makes them as usual
        return build_detection_train_loader(
            cfg, mapper=mapper, dataset=dicts, sampler=build_task_sampler(cfg, dicts)
        )
    return build_task_batch_loader(cfg, dicts, mapper)


def load_train_dicts(cfg):
    """Dataset dicts of ``cfg.DATASETS.TRAIN`` for training.

    Logs how many images each task has, and refuses a set where a task of ``cfg.MODEL.TASKS``
    has none: that head would train on nothing while the run looks healthy. With
    ``DATASETS.CHECK_AT_START`` every file is read and validated first (see :func:`check_files`).
    """
    names = list(cfg.DATASETS.TRAIN)
    dicts = compat.get_detection_dataset_dicts(
        names, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    )
    logger.info(f"{', '.join(names)}: {len(dicts)} training images per task: "
                f"{format_task_counts(dicts)}")
    if any(d.get(PSEUDO_TASKS_KEY) for d in dicts):
        logger.info(f"of which pseudo labels: {format_task_counts(dicts, key=PSEUDO_TASKS_KEY)}")
    check_pseudo_tasks(dicts, names, cfg.MODEL.TASKS, cfg.PSEUDO_LABELS.OPTIONAL_TASKS)
    check_trained_tasks_are_labeled(dicts, cfg.MODEL.TASKS, names)
    if cfg.DATASETS.CHECK_AT_START:
        num_classes = {task: get_task(task).num_classes(cfg) for task in mask_task_names()}
        dicts = check_files(dicts, cfg.DATASETS.ON_BAD_SAMPLE, cfg.DATALOADER.NUM_WORKERS,
                            num_classes)
        check_trained_tasks_are_labeled(dicts, cfg.MODEL.TASKS, names)
    return dicts


def check_files(dicts, on_bad_sample, num_workers=0, num_classes=None):
    """Read and validate the files of every record; raise on a bad one, or drop it ("skip").
    ``num_classes``: dict mask task -> number of classes (None: BDD100K's).

    Each training process checks an equal share and the findings are gathered, so all of them
    see the same result.
    """
    rank, world_size = comm.get_rank(), comm.get_world_size()
    share = list(range(rank, len(dicts), world_size))
    found = find_bad_records([dicts[i] for i in share], num_workers, comm.is_main_process(),
                             num_classes)
    bad = {}
    for part in comm.all_gather({share[i]: problems for i, problems in found}):
        bad.update(part)
    if not bad:
        logger.info(f"DATASETS.CHECK_AT_START: the files of {len(dicts)} images are fine")
        return dicts
    lines = "\n".join(f"  {path}: {problem}" for i in sorted(bad) for path, problem in bad[i])
    if on_bad_sample == "raise":
        raise ValueError(
            f"DATASETS.CHECK_AT_START: bad files in {len(bad)} of {len(dicts)} training "
            f"images:\n{lines}\n"
            "Fix or remove them, or set DATASETS.ON_BAD_SAMPLE skip to train without them."
        )
    logger.warning(f"DATASETS.CHECK_AT_START: leaving out {len(bad)} of {len(dicts)} training "
                   f"images, which have bad files:\n{lines}")
    return [d for i, d in enumerate(dicts) if i not in bad]


def check_trained_tasks_are_labeled(dicts, tasks, dataset_names):
    """Raise ValueError naming the task, the datasets and their label folders when a task of
    ``tasks`` (``MODEL.TASKS``) labels no record of ``dicts``."""
    labeled = {task for d in dicts for task in d.get("labeled_tasks", ())}
    for task in tasks:
        if task not in labeled:
            sources = "; ".join(_label_source(name, task) for name in dataset_names)
            raise ValueError(
                f"MODEL.TASKS trains {task!r}, but no image of DATASETS.TRAIN "
                f"{tuple(dataset_names)} is labeled for it. Its labels come from: {sources}. "
                f"An empty folder or masks under other names give no labels (the loading log "
                f"names the files it could not match); otherwise drop {task!r} from MODEL.TASKS."
            )


def _label_source(dataset_name, task):
    metadata = MetadataCatalog.get(dataset_name)
    # The metadata key that names where the task's labels come from (see register_loader).
    source = metadata.get(get_task(task).label_source_key, None)
    if source is None:
        return f"{dataset_name} has no {task} labels"
    return f"{dataset_name}: {source}"
