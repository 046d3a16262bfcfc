"""Exporting a trained model: one graph from an image tensor to every task's tensors.

The graph (:class:`ExportModule`) takes ``image``: [3, H, W] float32 pixel values (0-255) in the
model's input format (``INPUT.FORMAT``), already resized as the test mapper resizes
(``INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST``). Inside the graph: normalisation
(``MODEL.PIXEL_MEAN`` / ``PIXEL_STD``), padding to the backbone's size divisibility, the backbone,
the adapter and every head; out: each task's tensors (``Task.to_export_tensors``) in
``MODEL.TASKS`` order. Outside it, in the runtime: decoding and resizing the image (the test
mapper's), and the postprocessing to the original size (``Task.postprocess``). Tracing fixes H
and W to the sample image's; the runtime refuses another size.

The LV-Adapter's text features come from a file (``MODEL.ADAPTER.TEXT_FEATURES_FILE``, written by
``tools/dump_text_features.py``): no text encoder is built, so the export imports neither
open_clip nor transformers, and the graph holds the features as constants.

Beside the graph, ``export.json`` records what the runtime needs (:func:`read_export_info`):
tasks, output names, class names, the input format and size, and the source weights' identity.
"""
import json
import os
import warnings

import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import ImageList
from torch import nn

from lv_adapter.modeling.adapter.text_features import FileTextFeatures
from lv_adapter.tasks import get_task
from lv_adapter.utils.io import atomic_path, file_sha256, write_json

__all__ = ["ExportError", "ExportModule", "export_model", "read_export_info", "sample_input"]

INFO_FILE = "export.json"
FORMAT, VERSION = "lv_adapter.export", 1
GRAPH_FILES = {"onnx": "model.onnx", "torchscript": "model.ts"}
OPSET = 17  # RoiAlign with "half_pixel" coordinates (ROIAlignV2) needs 16 or later


class ExportError(RuntimeError):
    """A model or an export folder that cannot be used; the message names the part or file."""


class ExportModule(nn.Module):
    """A built model as one traceable function (module doc): ``image`` [3, H, W] -> a tuple of
    every task's tensors. ``part`` names what ran last, for the error of a failed trace."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.part = ""

    def forward(self, image):
        model = self.model
        self.part = "preprocessing (normalisation, padding)"
        x = (image - model.pixel_mean) / model.pixel_std
        images = ImageList.from_tensors([x], model.backbone.size_divisibility)
        self.part = f"backbone ({type(model.backbone).__name__})"
        features = model.backbone(images.tensor)
        self.part = f"adapter ({type(model.adapter).__name__})"
        features = model.adapter(features)
        outputs = []
        for task, head in model.heads.items():
            self.part = f"{task} head ({type(head).__name__})"
            spec = get_task(task)
            result = spec.run_head(head, features, images, None)[0][0]
            outputs.extend(spec.to_export_tensors(result))
        return tuple(outputs)


def output_names(tasks):
    """``<task>/<name>`` of every graph output, in order."""
    return [f"{task}/{name}" for task in tasks for name in get_task(task).export_names()]


def check_exportable(cfg, model):
    """Refuse what cannot become a graph, saying which part and why."""
    text = getattr(model.adapter, "text", None)
    if text is not None and not isinstance(text, FileTextFeatures):
        raise ExportError(
            "adapter (LVAdapter): its text features come from the text encoder; the exported "
            "graph holds them as constants from a file instead. Write it with "
            "tools/dump_text_features.py and export with MODEL.ADAPTER.TEXT_FEATURES_FILE FILE "
            "(tools/export_model.py does this for you when the config has none)")
    if model.training:
        raise ExportError("the model is in training mode; export runs its inference")


def export_model(cfg, model, image, out_dir, fmt="onnx", weights=None, config_file=None):
    """Trace ``model`` (built from ``cfg``, weights loaded) on ``image`` and write the graph and
    ``export.json`` to ``out_dir``, each atomically.

    Args:
        image (Tensor): [3, H, W] float32, as the test mapper gives it (module doc).
        fmt (str): "onnx" or "torchscript".
        weights (str or None): the checkpoint the weights came from (its sha256 is recorded).
        config_file (str or None): the config file, recorded.

    Returns:
        dict: what was written to ``export.json``.

    Raises:
        ExportError: naming the part of the model that cannot be exported, and why.
    """
    if fmt not in GRAPH_FILES:
        raise ValueError(f"format {fmt!r}: choose from {sorted(GRAPH_FILES)}")
    check_exportable(cfg, model)
    module = ExportModule(model).eval()
    tasks = list(model.heads.keys())
    graph = os.path.join(out_dir, GRAPH_FILES[fmt])
    try:
        # Gradients stay on: under no_grad, nn.MultiheadAttention in eval mode takes its fused
        # fast path (aten::_native_multi_head_attention), which no ONNX opset has.
        with atomic_path(graph) as tmp, warnings.catch_warnings():
            # The tracer warns wherever a shape becomes a constant: expected, the size is fixed.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            if fmt == "onnx":
                torch.onnx.export(module, (image,), tmp, dynamo=False, opset_version=OPSET,
                                  input_names=["image"], output_names=output_names(tasks))
            else:
                torch.jit.trace(module, (image,), check_trace=False).save(tmp)
    except Exception as e:  # the exporters raise many types; name the part that failed
        raise ExportError(f"cannot export the {module.part or 'model'} to {fmt}: "
                          f"{type(e).__name__}: {e}") from e
    info = _export_info(cfg, tasks, image, fmt, weights, config_file)
    write_json(os.path.join(out_dir, INFO_FILE), info, indent=1)
    return info


def _export_info(cfg, tasks, image, fmt, weights, config_file):
    metadata = MetadataCatalog.get(cfg.DATASETS.TEST[0]) if cfg.DATASETS.TEST else None
    return {
        "format": FORMAT,
        "version": VERSION,
        "graph": GRAPH_FILES[fmt],
        "graph_format": fmt,
        "tasks": tasks,
        "outputs": {task: get_task(task).export_names() for task in tasks},
        "classes": {task: list(get_task(task).classes_of(metadata)) for task in tasks},
        "input": {
            "format": cfg.INPUT.FORMAT,
            "height": int(image.shape[1]),
            "width": int(image.shape[2]),
            "min_size_test": cfg.INPUT.MIN_SIZE_TEST,
            "max_size_test": cfg.INPUT.MAX_SIZE_TEST,
        },
        "weights": {"path": os.path.abspath(weights) if weights else None,
                    "sha256": file_sha256(weights) if weights and os.path.isfile(weights)
                    else None},
        "config_file": os.path.abspath(config_file) if config_file else None,
        "opset": OPSET if fmt == "onnx" else None,
        "torch": torch.__version__,
    }


def sample_input(cfg, path=None):
    """The test mapper's output for the image ``path`` (default: the first image of
    ``DATASETS.TEST[0]``): what the graph is traced with, and what the runtime takes."""
    from lv_adapter.data import MultiTaskDatasetMapper

    if path is None:
        if not cfg.DATASETS.TEST:
            raise ValueError("DATASETS.TEST is empty: give a sample image (--sample-image)")
        record = DatasetCatalog.get(cfg.DATASETS.TEST[0])[0]
    else:
        record = {"file_name": path, "image_id": os.path.splitext(os.path.basename(path))[0]}
    mapped = MultiTaskDatasetMapper(cfg, False)(record)
    if mapped is None:  # the "skip" bad-sample policy
        raise ValueError(f"{record['file_name']}: cannot be read (see the log)")
    return mapped


def read_export_info(folder):
    """The ``export.json`` of an export folder, checked; ExportError naming the file when the
    folder, the file or its graph is missing, or the file is not an export's."""
    path = os.path.join(folder, INFO_FILE)
    if not os.path.isdir(folder):
        raise ExportError(f"{folder}: export folder not found (write it with "
                          "tools/export_model.py)")
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise ExportError(f"{path}: not found; {folder} is not an export folder") from None
    except ValueError as e:
        raise ExportError(f"{path}: malformed JSON ({e})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ExportError(f"{path}: not written by tools/export_model.py (no format {FORMAT!r})")
    if info.get("version") != VERSION:
        raise ExportError(f"{path}: export version {info.get('version')!r}, this runtime reads "
                          f"version {VERSION}; export the model again")
    graph = os.path.join(folder, str(info.get("graph")))
    if not os.path.isfile(graph):
        raise ExportError(f"{graph}: the graph named by {path} is missing")
    return info
