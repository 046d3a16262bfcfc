"""Checking a whole data set before training: every file read and validated, every problem kept.

A bad image or mask is otherwise found only when the sampler draws it, possibly hours into a run
or at the final evaluation. :func:`check_datasets` loads registered datasets, reads every image
and mask with the readers the mapper uses (:mod:`lv_adapter.data.readers`), and reports all
problems at once, with a per-task count of images. ``tools/check_dataset.py`` is its command line;
``DATASETS.CHECK_AT_START`` runs :func:`find_bad_records` on the training set at start-up.
"""
import dataclasses
import functools
import multiprocessing

from detectron2.data import DatasetCatalog, MetadataCatalog
from tqdm import tqdm

from lv_adapter.data.errors import BadSampleError, collect_skipped
from lv_adapter.data.readers import (
    check_image_size,
    read_image,
    read_record_mask,
)
from lv_adapter.data.summary import format_summary, summarize
from lv_adapter.tasks import get_task, mask_task_names, task_classes

__all__ = ["CheckReport", "check_datasets", "find_bad_records", "record_problems"]


def record_problems(record, num_classes=None):
    """Every problem of one dataset dict's files, as ``(path, problem)`` pairs (empty: all good).

    The image and each mask are checked on their own, so one bad file does not hide another; a
    mask is compared with the size the record gives (read from the image header at loading) and
    with ``num_classes`` (dict task -> K of the mask tasks; None: BDD100K's).
    """
    num_classes = num_classes or {}
    problems = []
    try:
        check_image_size(dict(record), read_image(record["file_name"]))
    except BadSampleError as e:
        problems.append((e.path, e.problem))
    shape = (record["height"], record["width"])
    for task in mask_task_names():
        if task in record.get("labeled_tasks", ()):
            try:
                read_record_mask(record, task, shape, num_classes.get(task))
            except BadSampleError as e:
                problems.append((e.path, e.problem))
    return problems


def find_bad_records(records, num_workers=0, progress=False, num_classes=None):
    """Check ``records`` with :func:`record_problems` (``num_classes`` passed on) in
    ``num_workers`` processes (0: here).

    Returns:
        list[tuple[int, list]]: ``(index in records, problems)`` of each record with a problem,
        in ``records`` order.
    """
    bar = tqdm(total=len(records), desc="checking files", unit="image", disable=not progress)
    check = functools.partial(record_problems, num_classes=num_classes)
    if num_workers > 0:
        with multiprocessing.Pool(num_workers) as pool:
            found = _collect(pool.imap(check, records, chunksize=8), bar)
    else:
        found = _collect(map(check, records), bar)
    bar.close()
    return found


def _collect(results, bar):
    found = []
    for index, problems in enumerate(results):
        bar.update()
        if problems:
            found.append((index, problems))
    return found


@dataclasses.dataclass
class CheckReport:
    """What :func:`check_datasets` found.

    Attributes:
        problems (list[tuple[str, str]]): sorted, distinct ``(file, problem)`` pairs.
        summaries (dict[str, str]): dataset name -> per-task counts
            (:func:`~lv_adapter.data.summary.format_summary`).
    """

    problems: list
    summaries: dict

    def format(self):
        lines = list(self.summaries.values())
        if self.problems:
            lines.append(f"{len(self.problems)} problems:")
            lines += [f"  {path}: {problem}" for path, problem in self.problems]
        else:
            lines.append("no problems found")
        return "\n".join(lines)


def check_datasets(names, num_workers=0, progress=False):
    """Load each registered dataset of ``names`` and check every file of every record.

    Loading skips (and reports) bad records instead of stopping at the first; a dataset that
    cannot be loaded at all, or that labels none of the tasks its metadata promises, is a
    problems too. A file shared by several datasets is read once. Mask values are checked against
    the classes of each dataset's metadata.
    """
    problems, summaries, seen = set(), {}, set()
    for name in names:
        dicts = _load(name, problems)
        if dicts is None:
            continue
        summary = summarize(dicts, read_masks=False, metadata=MetadataCatalog.get(name))
        summaries[name] = format_summary(name, summary)
        for task in MetadataCatalog.get(name).get("tasks", ()):
            if not summary["labeled"][task]:
                problems.add((name, f"no image is labeled for {task}"))
        unique = {_files_of(record): record for record in dicts}
        unique = [record for files, record in unique.items() if files not in seen]
        seen.update(_files_of(record) for record in unique)
        metadata = MetadataCatalog.get(name)
        num_classes = {task: len(task_classes(metadata, task)) for task in mask_task_names()}
        for _, found in find_bad_records(unique, num_workers, progress, num_classes):
            problems.update(found)
    return CheckReport(sorted(problems), summaries)


def _load(name, problems):
    """The dicts of dataset ``name`` with bad records skipped; problems go to ``problems``."""
    try:
        with collect_skipped() as skipped:
            dicts = DatasetCatalog.get(name)
    except (BadSampleError, ValueError) as e:  # a whole label file or folder is unusable
        problems.add((getattr(e, "path", name), getattr(e, "problem", str(e))))
        return None
    problems.update((e.path, e.problem) for e in skipped)
    return dicts


def _files_of(record):
    return (record["file_name"],) + tuple(
        record.get(get_task(task).label_keys[0]) for task in mask_task_names()
    )
