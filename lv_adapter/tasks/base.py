"""What a task is: :class:`Task` declares, once, everything the core needs to know about one task
of the multi-task model, and ``TASK_REGISTRY`` holds one instance per task, in canonical order.

A task is named by a plain string (``"detection"``): the values of ``MODEL.TASKS``, of a dataset
dict's ``labeled_tasks`` and of a dataset's ``metadata.tasks``. Config keys spell it upper-cased
(``MODEL.HEADS.DETECTION``, ``MODEL.TASK_WEIGHTS.DETECTION``).

This module is a leaf (detectron2's registry only): the data layer, the config, the model and the
tools all read it, so it must not import any of them. Hooks that need them import lazily.
"""
from detectron2.utils.registry import Registry

__all__ = [
    "IGNORE_LABEL",
    "TASK_REGISTRY",
    "Task",
    "get_task",
    "register_task",
    "task_classes",
    "task_names",
]

# The label id of pixels that no loss and no metric counts (BDD100K's ignore value): unlabeled,
# unsure pseudo-label pixels, padding.
IGNORE_LABEL = 255
# Pseudo-label summaries: shares and means rounded to this many decimals; more than WEAK_SHARE
# of the images without a box, or of the pixels left at 255, is worth a warning.
SUMMARY_DECIMALS = 6
WEAK_SHARE = 0.5

TASK_REGISTRY = Registry("TASK")
TASK_REGISTRY.__doc__ = """Tasks of the multi-task model, by name, in the order they registered
(that order is the order of ``labeled_tasks``, of the evaluators and of the result tables)."""


class Task:
    """One task: its name, its classes, where its labels live and how the model runs it.

    Subclasses set the class attributes and override the hooks that differ. Attributes:

    * ``name`` (str): the task's name.
    * ``classes`` / ``colors``: the default (BDD100K's) class names in label-id order, and an RGB
      colour per class; a dataset brings its own under ``class_metadata_key`` /
      ``color_metadata_key`` of its metadata (see :meth:`classes_of`).
    * ``label_keys`` (tuple[str]): the dataset-dict keys that hold the task's labels of one image
      (merging datasets by image and hiding labels in splits move exactly these).
    * ``label_source_key`` (str): the metadata key of the file or folder its labels come from.
    * ``input_key`` (str): the model-input key the mapper writes the label under.
    * ``output_key`` (str): the model-output key of the task's prediction.
    * ``head_node`` (str): the config node under ``MODEL`` whose ``NUM_CLASSES`` sizes the head;
      ``default_head``: the ``TASK_HEAD_REGISTRY`` name ``MODEL.HEADS.<TASK>`` defaults to.
    * ``threshold_key`` (str): the ``PSEUDO_LABELS`` key of its pseudo-label threshold;
      ``pseudo_path``: where its pseudo labels live under a pseudo-label root (BDD100K's layout).
    * ``readable_names`` (dict): class label -> how a prompt names it, for labels that read
      poorly in a sentence; every other class is named by its label.
    * ``result_key`` (str): the key of its evaluator's results; ``short_name`` and
      ``headline_metrics``: how the demo and the tables name it, and the metrics they print.
    * ``toolkit_task``, ``toolkit_ground_truth``, ``toolkit_export``: the official BDD100K
      toolkit's name of the task (``python -m bdd100k.eval.run -t``), its validation ground
      truth under ``bdd100k/labels`` and the evaluator's export under its ``bdd100k`` folder;
      empty when the toolkit has no such benchmark (``tools/check_toolkit_parity.py``).
    """

    name = ""
    classes = ()
    colors = ()
    class_metadata_key = ""
    color_metadata_key = ""
    label_keys = ()
    label_source_key = ""
    input_key = ""
    output_key = ""
    head_node = ""
    default_head = ""
    threshold_key = ""
    pseudo_path = ""
    readable_names = {}
    result_key = ""
    short_name = ""
    headline_metrics = ()
    toolkit_task = ""
    toolkit_ground_truth = ""
    toolkit_export = ""

    @property
    def __name__(self):
        # detectron2's Registry names what it registers by ``__name__``: a task by its name.
        return self.name

    @property
    def config_key(self):
        """The task's name in config keys: ``MODEL.HEADS.<config_key>`` and the like."""
        return self.name.upper()

    # Panel of the drawing the task is drawn on (lv_adapter/utils/visualizer.py): 0 is the left.
    panel = 0

    def classes_of(self, metadata):
        """The class names (tuple, label-id order) that a dataset's ``metadata`` holds under
        ``class_metadata_key``; the defaults when it holds none (or ``metadata`` is None)."""
        names = metadata.get(self.class_metadata_key, None) if metadata is not None else None
        return tuple(names) if names is not None else tuple(self.classes)

    def colors_of(self, metadata):
        """The RGB colours (one per class) of a dataset's ``metadata`` (``color_metadata_key``);
        the defaults when it holds none."""
        colors = metadata.get(self.color_metadata_key, None) if metadata is not None else None
        return tuple(tuple(c) for c in (colors if colors is not None else self.colors))

    def num_classes(self, cfg):
        """The class count of the task's head: ``MODEL.<head_node>.NUM_CLASSES``."""
        return cfg.MODEL[self.head_node].NUM_CLASSES

    # -- the mapper ------------------------------------------------------------------------------

    def read_label(self, dataset_dict, image_shape, num_classes=None):
        """Read (and check) the label of one image before augmentation; None when the label
        needs no reading ahead of the augmentation (it lives in ``dataset_dict``)."""
        return None

    def map_label(self, label, dataset_dict, transforms, image_shape):
        """The model input of the task for one image: ``label`` (from :meth:`read_label`) under
        ``transforms``, or an "unlabeled" input when the image is not labeled for the task
        (``dataset_dict["labeled_tasks"]`` lacks it). ``image_shape`` is the augmented (H, W)."""
        raise NotImplementedError

    # -- the model -------------------------------------------------------------------------------

    def targets(self, batched_inputs, images):
        """Per image, the target dict the task's heads take (see ``modeling/task_heads.py``).

        Args:
            batched_inputs (list[dict]): model inputs; ``input_key`` holds the label.
            images (ImageList): the padded, normalised batch.
        """
        raise NotImplementedError

    def run_head(self, head, features, images, targets):
        """Call the task's head: ``(results, losses)``; ``targets`` is None in inference."""
        return head(features, targets)

    def postprocess(self, result, image_size, height, width):
        """One image's result, from the network's input size ``image_size`` (H, W) to the
        original ``height`` x ``width``."""
        raise NotImplementedError

    # -- export (lv_adapter/deploy/): a traced graph returns tensors only -------------------------

    def export_names(self):
        """Names of the graph outputs of the task, in :meth:`to_export_tensors`' order."""
        raise NotImplementedError

    def to_export_tensors(self, result):
        """One image's head result (what :meth:`run_head` gives per image) as a tuple of
        tensors."""
        raise NotImplementedError

    def from_export_tensors(self, tensors, image_size):
        """The inverse of :meth:`to_export_tensors`: the head result of one image whose network
        input is ``image_size`` (H, W), ready for :meth:`postprocess`."""
        raise NotImplementedError

    # -- evaluation ------------------------------------------------------------------------------

    def build_evaluator(self, dataset_name, output_dir=None, ground_truth=None):
        """The task's detectron2 ``DatasetEvaluator`` on ``dataset_name`` (exports under
        ``output_dir``; ``ground_truth``: the dataset dicts shared by a multi-task evaluator)."""
        raise NotImplementedError

    def toolkit_pairs(self, ours, theirs):
        """``(metric, ours, toolkit's)`` for every metric both report: ``ours`` is the
        evaluator's results of the task, ``theirs`` the toolkit's JSON output."""
        raise NotImplementedError

    # -- pseudo labels (engine/pseudo_labeler.py runs the teacher, data/pseudo_labels.py reads) --

    def pseudo_label_file(self, root, image_id):
        """The file a teacher writes for one image under pseudo-label ``root``; its presence
        marks the image labeled (a resumed run skips it)."""
        raise NotImplementedError

    def read_pseudo_labels(self, path, handler):
        """``{image stem: label keys}`` of the pseudo labels under ``path`` (its
        ``pseudo_path`` under a root); ``handler``: the bad-sample policy for a bad record."""
        raise NotImplementedError

    def write_pseudo_label(self, path, record, output, threshold):
        """Write the pseudo label of one image (dataset dict ``record``) from the teacher's
        ``output`` to ``path`` (atomically), keeping what scores at least ``threshold``."""
        raise NotImplementedError

    def pseudo_work_paths(self, root):
        """Files and folders under ``root`` that only an unfinished generation holds (per-image
        parts waiting to be merged); removed once it is complete. None by default."""
        return []

    def finish_pseudo_labels(self, root, image_ids):
        """Once every image is labeled: write what is merged from the per-image files, if
        anything, and return the counts the summary reports (``engine/pseudo_summary.py``)."""
        raise NotImplementedError

    def weak_pseudo_label_warnings(self, summary, key):
        """Messages when the summary shows labels that would mostly teach the student nothing
        or "no object" (``key``: the teacher's threshold key); empty when they look usable."""
        return []

    # -- drawing (the panels are laid out by lv_adapter/utils/visualizer.py) ---------------------

    def drawable_from_label(self, dataset_dict):
        """The task's ground truth of one image in :meth:`draw`'s form; None when unlabeled."""
        raise NotImplementedError

    def drawable_from_output(self, outputs, score_threshold=0.5):
        """The task's prediction in one image's model ``outputs`` in :meth:`draw`'s form; None
        when ``outputs`` have none (a model without the task)."""
        raise NotImplementedError

    def draw(self, vis, drawable, metadata):
        """Draw ``drawable`` on detectron2's Visualizer ``vis``; classes named and coloured by
        the dataset's ``metadata`` (:meth:`classes_of`, :meth:`colors_of`)."""
        raise NotImplementedError


def register_task(task):
    """Register ``task`` (a :class:`Task` instance) under its name; returns it.

    Registration order is the tasks' canonical order; a name registers once.
    """
    if not task.name:
        raise ValueError(f"{type(task).__name__} has no name")
    TASK_REGISTRY.register(task)
    return task


def task_names():
    """The registered tasks' names, in registration order (a tuple)."""
    return tuple(name for name, _ in TASK_REGISTRY)


def get_task(name, key="task"):
    """The registered :class:`Task` called ``name``; a ValueError naming ``key`` (the config key
    or argument that named it) and the registered tasks when there is none."""
    if name not in TASK_REGISTRY:
        raise ValueError(f"{key}: unknown task {name!r}; registered tasks: "
                         f"{', '.join(task_names())} (a project registers its tasks when its "
                         f"package is imported: run the project's train_net.py)")
    return TASK_REGISTRY.get(name)


def task_classes(metadata, task):
    """The class names of ``task`` in a dataset's ``metadata`` (see :meth:`Task.classes_of`)."""
    return get_task(task).classes_of(metadata)
