"""Running an exported model with onnxruntime, answering as the PyTorch model does.

:class:`ExportedModel` is called like the model in evaluation: a list of test-mapper outputs
(``image`` [3, H, W] at the exported size, optional ``height``/``width`` of the original image)
in, a list of per-image dicts out, with each task's output under its ``output_key``
(``instances``, ``sem_seg``, ``drivable_seg``, a project task's) at the original size. So
detectron2's ``inference_on_dataset``, the evaluators, the visualizer and the submission exports
take it unchanged (``train_net.py --eval-only --exported DIR``).

onnxruntime is imported here, when an exported model is opened; the rest of lv_adapter never
imports it. Providers: CUDA first where onnxruntime offers it, then the CPU.
"""
import os

import numpy as np
import torch
from torch import nn

from lv_adapter.deploy.export import ExportError, read_export_info
from lv_adapter.tasks import get_task

__all__ = ["ExportedModel", "check_matches_config"]


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ImportError("running an exported model needs onnxruntime: `make setup` installs "
                          "it (or `pip install onnxruntime`)") from None
    return onnxruntime


class ExportedModel(nn.Module):
    """An export folder (``tools/export_model.py``) run by onnxruntime (module doc).

    Args:
        folder (str): holds ``export.json`` and ``model.onnx``.
        providers (list[str] or None): onnxruntime's execution providers; None: CUDA when
            available, then CPU.
        threads (int or None): onnxruntime's intra-op threads (None: its default, every core).

    Raises:
        ExportError: a missing or malformed folder, or a graph onnxruntime cannot load (a
            truncated file, say), naming the file.
    """

    def __init__(self, folder, providers=None, threads=None):
        super().__init__()
        self.info = read_export_info(folder)
        if self.info["graph_format"] != "onnx":
            raise ExportError(f"{folder}: holds a {self.info['graph_format']} graph; the runtime "
                              "runs ONNX (export with --format onnx)")
        self.tasks = list(self.info["tasks"])
        for task in self.tasks:
            get_task(task, key=f"{os.path.join(folder, 'export.json')}: tasks")
        self.path = os.path.join(folder, self.info["graph"])
        self.size = (self.info["input"]["height"], self.info["input"]["width"])
        self.session = _open_session(self.path, providers, threads)

    def forward(self, batched_inputs):
        """Per image ``{output_key: output}`` of every task, at the original size."""
        return [self._predict(x) for x in batched_inputs]

    def _predict(self, x):
        image = self._check_image(x)
        arrays = self.session.run(None, {"image": image})
        outputs, start = {}, 0
        height, width = x.get("height", self.size[0]), x.get("width", self.size[1])
        for task in self.tasks:
            spec = get_task(task)
            count = len(spec.export_names())
            tensors = [torch.from_numpy(a) for a in arrays[start:start + count]]
            result = spec.from_export_tensors(tensors, self.size)
            outputs[spec.output_key] = spec.postprocess(result, self.size, height, width)
            start += count
        return outputs

    def _check_image(self, x):
        """The image as the graph's float32 [3, H, W] array; ValueError naming the image when
        its channels or size are not the exported ones."""
        image = x["image"]
        shape = tuple(image.shape)
        if len(shape) != 3 or shape[0] != 3 or shape[1:] != self.size:
            name = x.get("file_name", "the image")
            raise ValueError(
                f"{name}: the exported model {self.path} takes [3, {self.size[0]}, "
                f"{self.size[1]}] images (the test resize of its export: MIN_SIZE_TEST "
                f"{self.info['input']['min_size_test']}, MAX_SIZE_TEST "
                f"{self.info['input']['max_size_test']}), got {list(shape)}; export it again "
                "with a sample image of this size")
        return np.ascontiguousarray(image.numpy() if torch.is_tensor(image) else image,
                                    dtype=np.float32)


def _open_session(path, providers, threads):
    ort = _onnxruntime()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # No spinning: onnxruntime's threads would otherwise keep the cores busy for a while after
    # each run, slowing whatever shares the machine (the evaluator, the data loader, a car's
    # other processes) and any timing beside it.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if providers is None:
        available = ort.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in available]
    try:
        return ort.InferenceSession(path, options, providers=providers)
    except Exception as e:  # onnxruntime raises its own types for a bad file
        raise ExportError(f"{path}: onnxruntime cannot load it (truncated or not an ONNX "
                          f"graph?): {e}") from None


def check_matches_config(info, cfg, folder):
    """Refuse an export made from another config than ``cfg``: other tasks, classes, input
    format or test size. ExportError naming the folder and the difference."""
    mine = {
        "tasks": list(cfg.MODEL.TASKS),
        "class counts": {t: get_task(t).num_classes(cfg) for t in cfg.MODEL.TASKS},
        "INPUT.FORMAT": cfg.INPUT.FORMAT,
        "INPUT.MIN_SIZE_TEST": cfg.INPUT.MIN_SIZE_TEST,
        "INPUT.MAX_SIZE_TEST": cfg.INPUT.MAX_SIZE_TEST,
    }
    theirs = {
        "tasks": list(info["tasks"]),
        "class counts": {t: len(c) for t, c in info["classes"].items()},
        "INPUT.FORMAT": info["input"]["format"],
        "INPUT.MIN_SIZE_TEST": info["input"]["min_size_test"],
        "INPUT.MAX_SIZE_TEST": info["input"]["max_size_test"],
    }
    differ = [f"{key}: config {mine[key]!r}, export {theirs[key]!r}" for key in mine
              if mine[key] != theirs[key]]
    if differ:
        raise ExportError(f"{folder} was exported from another config ({'; '.join(differ)})")
