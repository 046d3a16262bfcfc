"""Drawing ground truth and predictions of the three tasks with detectron2's Visualizer.

One picture per image, two panels side by side: detection boxes over the drivable-area overlay
on the left, the semantic overlay on the right. A task without labels is marked "not labeled".
"""
import numpy as np
from detectron2.data import Metadata
from detectron2.utils.visualizer import Visualizer

from lv_adapter.data.readers import read_label_mask
from lv_adapter.tasks import DETECTION, DRIVABLE, IGNORE_LABEL, SEMANTIC
from lv_adapter.tasks.drivable import DRIVABLE_BACKGROUND, DRIVABLE_CLASSES, DRIVABLE_COLORS

# Drivable classes drawn as "stuff"; background is left undrawn so the scene stays visible.
_DRIVABLE_METADATA = Metadata(
    stuff_classes=list(DRIVABLE_CLASSES), stuff_colors=list(DRIVABLE_COLORS)
)
_CROWD_COLOR = (0.6, 0.6, 0.6)


def draw_multitask(image_rgb, metadata, detections=None, sem_seg=None, drivable=None,
                   scale=1.0):
    """Draw the labels or predictions of one image.

    Args:
        image_rgb (ndarray): HxWx3 uint8 RGB image.
        metadata (Metadata): with thing_classes/thing_colors and stuff_classes/stuff_colors.
        detections (dict or None): ``boxes`` (Nx4 XYXY_ABS), ``classes`` (N ints), optional
            ``scores`` (N floats) and ``crowd`` (N bools: ignore regions, drawn grey); None when
            detection is not labeled.
        sem_seg (ndarray or None): HxW semantic class ids (255 = ignore).
        drivable (ndarray or None): HxW drivable class ids (0 direct, 1 alternative, 2 bg).
        scale (float): size of the picture relative to the image; labels stay readable on
            small images (the 256x144 sample scenes) when it is above 1.

    Returns:
        ndarray: (scale*H)x(2*scale*W)x3 uint8 RGB picture.
    """
    left = Visualizer(image_rgb, _DRIVABLE_METADATA, scale=scale)
    if drivable is not None:
        drivable = np.where(drivable == DRIVABLE_BACKGROUND, IGNORE_LABEL, drivable)
        left.draw_sem_seg(drivable, alpha=0.4)
    _draw_detections(left, metadata, detections)
    missing = [t for t, v in ((DETECTION, detections), (DRIVABLE, drivable)) if v is None]
    _mark_missing(left, missing)
    right = Visualizer(image_rgb, metadata, scale=scale)
    if sem_seg is not None:
        right.draw_sem_seg(sem_seg, area_threshold=0, alpha=0.5)
    _mark_missing(right, [SEMANTIC] if sem_seg is None else [])
    return np.concatenate([left.output.get_image(), right.output.get_image()], axis=1)


def _draw_detections(vis, metadata, detections):
    if detections is None or len(detections["boxes"]) == 0:
        return
    names, colors = metadata.thing_classes, metadata.thing_colors
    scores = detections.get("scores")
    crowd = detections.get("crowd", [False] * len(detections["boxes"]))
    labels, box_colors = [], []
    for i, (cls, is_crowd) in enumerate(zip(detections["classes"], crowd)):
        text = names[cls] + (" (ignore)" if is_crowd else "")
        labels.append(text if scores is None else f"{text} {scores[i]:.2f}")
        box_colors.append(_CROWD_COLOR if is_crowd else tuple(c / 255 for c in colors[cls]))
    vis.overlay_instances(
        boxes=np.asarray(detections["boxes"]), labels=labels, assigned_colors=box_colors
    )


def _mark_missing(vis, tasks):
    if tasks:
        height = vis.output.height
        font_size = max(8, height // 30)
        vis.draw_text(  # the text hangs below its anchor: keep two lines of room
            f"{', '.join(tasks)}: not labeled", (4, height - 2.5 * font_size), color="w",
            horizontal_alignment="left", font_size=font_size,
        )


def ground_truth_of(dataset_dict):
    """Read the ground truth of a dataset dict into :func:`draw_multitask`'s arguments."""
    tasks = dataset_dict.get("labeled_tasks", ())
    shape = (dataset_dict["height"], dataset_dict["width"])
    out = {"detections": None, "sem_seg": None, "drivable": None}
    if DETECTION in tasks:
        annos = dataset_dict["annotations"]
        out["detections"] = {
            "boxes": [a["bbox"] for a in annos],
            "classes": [a["category_id"] for a in annos],
            "crowd": [bool(a.get("iscrowd", 0)) for a in annos],
        }
    if SEMANTIC in tasks:
        out["sem_seg"] = read_label_mask(dataset_dict["sem_seg_file_name"], SEMANTIC, shape)
    if DRIVABLE in tasks:
        legacy = dataset_dict.get("drivable_legacy", False)
        path = dataset_dict["drivable_file_name"]
        out["drivable"] = read_label_mask(path, DRIVABLE, shape, legacy)
    return out


def predictions_of(outputs, score_threshold=0.5):
    """Turn one image's model outputs into :func:`draw_multitask`'s arguments.

    Args:
        outputs (dict): ``instances`` (pred_boxes, scores, pred_classes), ``sem_seg`` [K, H, W]
            and/or ``drivable_seg`` [3, H, W]; tasks the model lacks are simply absent.
        score_threshold (float): detections below it are not drawn.
    """
    out = {"detections": None, "sem_seg": None, "drivable": None}
    if "instances" in outputs:
        instances = outputs["instances"].to("cpu")
        instances = instances[instances.scores >= score_threshold]
        out["detections"] = {
            "boxes": instances.pred_boxes.tensor.numpy(),
            "classes": instances.pred_classes.tolist(),
            "scores": instances.scores.tolist(),
        }
    for key, name in (("sem_seg", "sem_seg"), ("drivable_seg", "drivable")):
        if key in outputs:
            out[name] = outputs[key].argmax(dim=0).cpu().numpy()
    return out
