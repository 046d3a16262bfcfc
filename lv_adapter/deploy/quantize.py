"""Dynamic int8 quantization of an ONNX export (onnxruntime's ``quantize_dynamic``).

The weights of the convolutions and matrix products are stored as int8 (per output channel);
their inputs are quantized to uint8 on each call from the range each call sees, so no
calibration data is needed. The rest of the graph (normalisation, RoIAlign, softmax, the
postprocessing in the runtime) stays float. The graph's file replaces the float one in the export
folder; ``export.json`` records the quantization and the float graph's sha256, and the runtime
runs the folder as any other. What this costs in accuracy is measured, not assumed:
``tools/check_export_parity.py`` prints the int8 model's metrics beside PyTorch's.
"""
import contextlib
import logging
import os

from lv_adapter.deploy.export import INFO_FILE, ExportError, read_export_info
from lv_adapter.utils.io import atomic_path, file_sha256, write_json

__all__ = ["INT8", "quantize_export"]

INT8 = "dynamic int8"


def quantize_export(folder):
    """Quantize the ONNX export in ``folder`` in place (module doc); returns its new info.

    Raises:
        ExportError: the folder holds no ONNX float graph (TorchScript, or already quantized).
    """
    info = read_export_info(folder)
    if info["graph_format"] != "onnx":
        raise ExportError(f"{folder}: int8 quantization needs an ONNX graph, it holds "
                          f"{info['graph_format']}")
    if info.get("quantization"):
        raise ExportError(f"{folder}: already quantized ({info['quantization']['method']})")
    graph = os.path.join(folder, info["graph"])
    float_sha = file_sha256(graph)
    with atomic_path(graph) as tmp, _quiet_root_logger():
        _quantize_dynamic(graph, tmp)
    info["quantization"] = {"method": INT8, "weights": "int8, per channel",
                            "activations": "uint8, range per call",
                            "float_graph_sha256": float_sha}
    write_json(os.path.join(folder, INFO_FILE), info, indent=1)
    return info


def _quantize_dynamic(source, target):
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ImportError("int8 quantization needs onnxruntime and onnx: `make setup` installs "
                          "them") from None
    quantize_dynamic(source, target, per_channel=True, weight_type=QuantType.QInt8)


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer warns on the root logger for every tensor whose type its shape
    inference cannot tell (the RoIAlign indices, say), which stay float: expected, not news."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
