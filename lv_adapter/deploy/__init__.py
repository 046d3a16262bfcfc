"""Deploying a trained model: export to one ONNX (or TorchScript) file, and a runtime that runs
the ONNX file with onnxruntime and answers as the PyTorch model does.

:mod:`.export` (torch only) traces the model; :mod:`.runtime` imports onnxruntime when it is
used, so neither onnx nor onnxruntime is needed to train or evaluate in PyTorch.
"""
from lv_adapter.deploy.export import ExportModule, export_model, read_export_info, sample_input
from lv_adapter.deploy.runtime import ExportedModel

__all__ = ["ExportModule", "ExportedModel", "export_model", "read_export_info", "sample_input"]
