"""Drawing ground truth and predictions of every task with detectron2's Visualizer.

One picture per image, panels side by side; each task is drawn on the panel its registration
names (``Task.panel``; the built-in tasks: detection boxes over the drivable-area overlay on the
left, the semantic overlay on the right), masks first so that boxes stay on top, and the drawing
itself is the task's (``Task.draw``). A task without labels is marked "not labeled".
"""
import numpy as np
from detectron2.data import Metadata
from detectron2.utils.visualizer import Visualizer

from lv_adapter.tasks import MaskTask, get_task, task_names

__all__ = ["draw_multitask", "ground_truth_of", "label_font_size", "predictions_of"]


def draw_multitask(image_rgb, metadata, drawables=None, scale=1.0):
    """Draw the labels or predictions of one image.

    Args:
        image_rgb (ndarray): HxWx3 uint8 RGB image.
        metadata (Metadata): the dataset's; each task reads its class names and colours there
            (its defaults when absent).
        drawables (dict): task name -> what the task draws (:func:`ground_truth_of`,
            :func:`predictions_of`), None for a task without labels (marked "not labeled").
        scale (float): size of the picture relative to the image; labels stay readable on
            small images (the 256x144 sample scenes) when it is above 1.

    Returns:
        ndarray: (scale*H)x(P*scale*W)x3 uint8 RGB picture, P panels (2 for the three tasks).
    """
    drawables = dict(drawables or {})
    tasks = [get_task(name) for name in drawables]
    panels = sorted({task.panel for task in tasks} | {0, 1})
    pictures = []
    for panel in panels:
        vis = Visualizer(image_rgb, metadata or Metadata(), scale=scale)
        on_panel = [task for task in tasks if task.panel == panel]
        # Masks first: boxes drawn after them stay visible.
        for task in sorted(on_panel, key=lambda t: not isinstance(t, MaskTask)):
            if drawables[task.name] is not None:
                task.draw(vis, drawables[task.name], metadata)
        order = {name: i for i, name in enumerate(task_names())}
        missing = sorted((t.name for t in on_panel if drawables[t.name] is None), key=order.get)
        _mark_missing(vis, missing)
        pictures.append(vis.output.get_image())
    return np.concatenate(pictures, axis=1)


def label_font_size(vis):
    """The font size a Visualizer ``vis`` gives its own labels (detectron2 sizes them by the
    picture: the square root of its area over 90, at least 10 // scale), for a task's ``draw``
    that writes text of its own."""
    picture = vis.output
    return max(np.sqrt(picture.height * picture.width) // 90, 10 // picture.scale)


def _mark_missing(vis, tasks):
    if tasks:
        height = vis.output.height
        font_size = max(8, height // 30)
        vis.draw_text(  # the text hangs below its anchor: keep two lines of room
            f"{', '.join(tasks)}: not labeled", (4, height - 2.5 * font_size), color="w",
            horizontal_alignment="left", font_size=font_size,
        )


def ground_truth_of(dataset_dict, tasks=None):
    """The ground truth of a dataset dict as :func:`draw_multitask`'s ``drawables``.

    ``tasks``: the tasks to draw (None: every registered task); those the image is not labeled
    for map to None.
    """
    names = task_names() if tasks is None else tasks
    return {name: get_task(name).drawable_from_label(dataset_dict) for name in names}


def predictions_of(outputs, score_threshold=0.5, tasks=None):
    """One image's model outputs as :func:`draw_multitask`'s ``drawables``.

    Args:
        outputs (dict): the model's output of one image (``instances``, ``sem_seg`` [K, H, W],
            ``drivable_seg`` [3, H, W], ...); tasks the model lacks are simply absent (None).
        score_threshold (float): detections below it are not drawn.
        tasks (iterable[str] or None): the tasks to draw; None: every registered task.
    """
    names = task_names() if tasks is None else tasks
    return {name: get_task(name).drawable_from_output(outputs, score_threshold) for name in names}
