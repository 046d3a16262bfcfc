"""Export and runtime (issue 18): tools/export_model.py on train_net.py's own checkpoints, the
exported graph run by onnxruntime against PyTorch on the held-out sample scenes, train_net.py
evaluating the export, and the errors of what cannot be used."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from detectron2.engine import default_argument_parser

import train_net
from conftest import REPO, subprocess_env
from lv_adapter.deploy import ExportedModel, ExportModule, sample_input
from lv_adapter.deploy.export import ExportError, check_exportable
from lv_adapter.deploy.runtime import check_matches_config
from lv_adapter.engine.predictor import Predictor

sys.path.insert(0, os.path.join(REPO, "tools"))  # check_export_parity, as test_tools does

QUICK = os.path.join(REPO, "configs", "quick_schedules")
TINY = os.path.join(QUICK, "multitask_tiny.yaml")
TOOL = os.path.join(REPO, "tools", "export_model.py")


@pytest.fixture(scope="module")
def trained(sample_root, tmp_path_factory):
    """The tiny multi-task model trained (4 iterations) and evaluated by train_net.py."""
    out = tmp_path_factory.mktemp("trained")
    argv = ["--config-file", TINY, "OUTPUT_DIR", str(out), "MODEL.DEVICE", "cpu"]
    train_net.main(default_argument_parser().parse_args(argv))
    return out


def export(config, out, weights, *extra, project=None):
    cmd = [sys.executable, TOOL, "--config-file", config, "--output", str(out), *extra]
    cmd += ["--project", project] if project else []
    # One stream: the log goes to stdout, warnings and errors to stderr.
    return subprocess.run(cmd + ["MODEL.WEIGHTS", str(weights)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, cwd=REPO, env=subprocess_env())


@pytest.fixture(scope="module")
def exported(trained, sample_root):
    out = trained / "export"
    done = export(TINY, out, trained / "model_final.pth")
    assert done.returncode == 0, done.stdout[-3000:]
    return out, done.stdout


def test_the_export_writes_one_graph_and_what_the_runtime_needs(trained, exported):
    from lv_adapter.config import build_config
    from lv_adapter.utils.io import file_sha256

    folder, log = exported
    info = json.loads((folder / "export.json").read_text())
    assert info["tasks"] == ["detection", "semantic", "drivable"]
    assert info["outputs"]["detection"] == ["boxes", "scores", "classes"]
    assert [len(info["classes"][t]) for t in info["tasks"]] == [10, 19, 3]
    assert (info["input"]["format"], info["input"]["width"], info["input"]["height"]) == (
        build_config(TINY).INPUT.FORMAT, 128, 72)
    assert info["weights"]["sha256"] == file_sha256(trained / "model_final.pth")
    assert (folder / "model.onnx").stat().st_size > 0
    assert not [n for n in os.listdir(folder) if n.startswith(".tmp-")]
    assert "text-encoder packages imported: none" in log
    assert "onnxruntime vs PyTorch on" in log and "drivable: argmax_agreement" in log


def test_the_exported_model_answers_as_pytorch_on_the_held_out_scenes(trained, exported, capsys):
    """tools/check_export_parity.py: both models on every held-out image, within the limits
    (boxes 0.01 px, scores 1e-4, argmax 99.99 %, metrics equal to two decimals)."""
    import check_export_parity

    argv = ["--config-file", TINY, "--exported", str(exported[0]),
            "MODEL.WEIGHTS", str(trained / "model_final.pth")]
    assert check_export_parity.main(check_export_parity.parse_args(argv)) == 0
    printed = capsys.readouterr().out
    assert "export parity: all within the limits" in printed
    assert "unmatched 0" in printed and "drivable: argmax_agreement" in printed
    assert "sem mIoU" in printed and "exported: equal" in printed


def test_train_net_evaluates_the_export(trained, exported, tmp_path):
    argv = ["--config-file", TINY, "--eval-only", "--exported", str(exported[0]),
            "OUTPUT_DIR", str(tmp_path)]
    results = train_net.main(train_net.argument_parser().parse_args(argv))
    written = json.loads((tmp_path / "inference" / "results.json").read_text())
    assert set(written) == set(results) == {"bbox", "sem_seg", "drivable_seg"}
    with pytest.raises(ValueError, match="--exported evaluates an exported model: add "
                                         "--eval-only"):
        train_net.main(train_net.argument_parser().parse_args(argv[:2] + argv[3:]))


@pytest.mark.same_calls
def test_the_lv_adapter_student_exports_with_its_text_features_as_constants(sample_root,
                                                                            tmp_path):
    import onnx

    config = os.path.join(QUICK, "lv_adapter_tiny.yaml")
    argv = ["--config-file", config, "OUTPUT_DIR", str(tmp_path / "train"), "MODEL.DEVICE", "cpu",
            "SOLVER.MAX_ITER", "1", "SOLVER.ADAPT_ITERS", "0", "DATASETS.TEST", "()"]
    train_net.main(default_argument_parser().parse_args(argv))
    done = export(config, tmp_path / "export", tmp_path / "train" / "model_final.pth")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "running tools/dump_text_features.py" in done.stdout
    assert "text-encoder packages imported: none" in done.stdout  # the export process's own
    assert (tmp_path / "export" / "text_features.pth").is_file()
    graph = onnx.load(str(tmp_path / "export" / "model.onnx"))
    names = [t.name for t in graph.graph.initializer] + [n.name for n in graph.graph.node]
    assert not [n for n in names if "prompts" in n or "text_encoder" in n]
    assert "semantic: argmax_agreement 1" in done.stdout


@pytest.mark.same_calls
def test_torchscript_comes_for_free(trained, sample_root, tmp_path):
    from lv_adapter.config import build_config

    done = export(TINY, tmp_path, trained / "model_final.pth", "--format", "torchscript")
    assert done.returncode == 0, done.stdout[-3000:]
    cfg = build_config(TINY, ["MODEL.WEIGHTS", str(trained / "model_final.pth")])
    image = sample_input(cfg)["image"].float()
    with torch.no_grad():
        traced = torch.jit.load(str(tmp_path / "model.ts"))(image)
        eager = ExportModule(Predictor(cfg).model)(image)
    assert len(traced) == len(eager) == 5
    for a, b in zip(traced, eager):
        assert torch.allclose(a.float(), b.float(), atol=1e-4)


@pytest.mark.same_calls
def test_int8_quantization_writes_a_smaller_graph_the_runtime_runs(trained, exported, tmp_path):
    """export_model.py --int8: the graph is quantized (dynamic int8), export.json says so and
    names the float graph it came from; the runtime answers with the same structures, near the
    float export's (how near on trained models: BENCHMARKS.md)."""
    from lv_adapter.config import build_config
    from lv_adapter.deploy.quantize import quantize_export
    from lv_adapter.utils.io import file_sha256

    done = export(TINY, tmp_path / "int8", trained / "model_final.pth", "--int8")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Quantized the graph: dynamic int8" in done.stdout
    assert "onnxruntime vs PyTorch on" in done.stdout  # the check runs on the int8 graph
    assert "Inference failed or unsupported type" not in done.stdout  # the quantizer kept quiet
    info = json.loads((tmp_path / "int8" / "export.json").read_text())
    assert info["quantization"]["method"] == "dynamic int8"
    assert info["quantization"]["float_graph_sha256"] == file_sha256(exported[0] / "model.onnx")
    assert (tmp_path / "int8" / "model.onnx").stat().st_size < 0.5 * (
        exported[0] / "model.onnx").stat().st_size
    image = torch.rand(3, 72, 128, generator=torch.Generator().manual_seed(0)) * 255
    quantized = ExportedModel(str(tmp_path / "int8"))([{"image": image}])[0]
    floating = ExportedModel(str(exported[0]))([{"image": image}])[0]
    assert set(quantized) == set(floating) == {"instances", "sem_seg", "drivable_seg"}
    assert quantized["sem_seg"].shape == floating["sem_seg"].shape
    # Other boxes, so the postprocessing may drop a different number of empty ones.
    assert 0 < len(quantized["instances"]) <= build_config(TINY).MODEL.SPARSE_RCNN.TEST_TOPK
    assert quantized["instances"].pred_boxes.tensor.isfinite().all()
    agree = (quantized["drivable_seg"].argmax(0) == floating["drivable_seg"].argmax(0))
    assert agree.float().mean() > 0.9
    with pytest.raises(ExportError, match="already quantized \\(dynamic int8\\)"):
        quantize_export(str(tmp_path / "int8"))
    refused = export(TINY, tmp_path / "ts", trained / "model_final.pth", "--int8", "--format",
                     "torchscript")
    assert refused.returncode == 2 and "--int8 quantizes an ONNX graph" in refused.stdout


def test_what_cannot_be_used_is_named(trained, exported, tmp_path):
    from detectron2.modeling import build_model

    from lv_adapter.config import build_config

    folder = tmp_path / "copy"
    shutil.copytree(exported[0], folder)
    model = ExportedModel(str(folder))
    with pytest.raises(ValueError, match=r"a.jpg: the exported model .* takes \[3, 72, 128\] "
                                         r"images .* got \[3, 36, 64\]"):
        model([{"image": torch.zeros(3, 36, 64), "file_name": "a.jpg"}])
    with pytest.raises(ValueError, match=r"got \[1, 72, 128\]"):
        model([{"image": torch.zeros(1, 72, 128)}])
    with open(folder / "model.onnx", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(ExportError, match="model.onnx: onnxruntime cannot load it"):
        ExportedModel(str(folder))
    (folder / "export.json").write_text("{")
    with pytest.raises(ExportError, match="export.json: malformed JSON"):
        ExportedModel(str(folder))
    (folder / "export.json").unlink()
    with pytest.raises(ExportError, match="export.json: not found"):
        ExportedModel(str(folder))
    with pytest.raises(ExportError, match="export folder not found"):
        ExportedModel(str(tmp_path / "nowhere"))
    cfg = build_config(os.path.join(QUICK, "lv_adapter_tiny.yaml"))
    with pytest.raises(ExportError, match="adapter \\(LVAdapter\\): its text features come "
                                          "from the text encoder"):
        check_exportable(cfg, build_model(cfg).eval())
    info = json.loads((exported[0] / "export.json").read_text())
    with pytest.raises(ExportError, match="INPUT.MIN_SIZE_TEST: config 144, export 72"):
        check_matches_config(info, build_config(os.path.join(REPO, "configs", "sample",
                                                             "multitask_R18.yaml")), "x")
