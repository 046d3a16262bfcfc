"""train_net.py: training, checkpoints and resume, evaluation, several CPU processes."""
import json
import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser

import train_net
from conftest import REPO, subprocess_env, umask
from lv_adapter.engine import SafeCheckpointer, UnreadableCheckpointError

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


def args_for(output_dir, *opts, extra=()):
    argv = ["--config-file", TINY, *extra, "OUTPUT_DIR", str(output_dir), "MODEL.DEVICE", "cpu"]
    return default_argument_parser().parse_args(argv + list(opts))


@pytest.fixture(scope="module")
def trained(sample_root, tmp_path_factory):
    """A 4-iteration training run with checkpoints every 2 iterations."""
    out = tmp_path_factory.mktemp("train")
    train_net.main(args_for(out))
    return out


def test_training_writes_checkpoints(trained):
    names = sorted(os.listdir(trained))
    assert {"model_0000001.pth", "model_final.pth", "last_checkpoint"} <= set(names)
    assert not [n for n in names if n.startswith(".tmp-")]
    assert (trained / "last_checkpoint").read_text() == "model_final.pth"


def test_training_logs_the_class_histogram_of_its_detection_images(trained):
    # Both detectron2 versions lost it: main raised KeyError on images without boxes labeled,
    # 0.6 swallowed an np.int error (compat.log_class_histogram replaces theirs).
    dicts = DatasetCatalog.get("bdd100k_multitask_train")
    labeled = [d for d in dicts if "detection" in d["labeled_tasks"]]
    boxes = sum(not a["iscrowd"] for d in labeled for a in d["annotations"])
    assert 0 < len(labeled) < len(dicts) and boxes > 0
    log = (trained / "log.txt").read_text()
    heading = f"Boxes per class in the {len(labeled)} of {len(dicts)} images labeled for detection"
    assert heading in log
    total = re.search(r"\|\s*total\s*\|\s*(\d+)", log[log.index(heading):])
    assert int(total.group(1)) == boxes


def test_resume_continues_at_the_saved_iteration_with_the_saved_weights(trained):
    cfg = train_net.setup(args_for(trained, "SOLVER.MAX_ITER", "6"))
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=True)
    saved = torch.load(trained / "model_final.pth", weights_only=False)
    assert trainer.start_iter == saved["iteration"] + 1 == 4
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, saved["model"][key]), key


def test_a_crash_while_saving_leaves_the_last_complete_checkpoint(trained, monkeypatch, tmp_path):
    model = torch.nn.Linear(2, 2)
    checkpointer = SafeCheckpointer(model, save_dir=str(tmp_path))
    checkpointer.save("model_0000")

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save("model_0001")
    assert sorted(os.listdir(tmp_path)) == ["last_checkpoint", "model_0000.pth"]
    assert checkpointer.get_checkpoint_file().endswith("model_0000.pth")


def test_checkpoint_of_another_shape_is_refused_with_the_keys_named(trained):
    cfg = train_net.setup(args_for(trained, "MODEL.SPARSE_RCNN.NUM_PROPOSALS", "5"))
    model = train_net.Trainer.build_model(cfg)
    with pytest.raises(ValueError, match=r"heads\.detection\.\S+: checkpoint \(8, "):
        SafeCheckpointer(model).load(str(trained / "model_final.pth"))


def test_eval_only_reports_every_task(trained):
    weights = str(trained / "model_final.pth")
    args = args_for(trained, "MODEL.WEIGHTS", weights, extra=["--eval-only"])
    results = train_net.main(args)
    assert {"bbox", "sem_seg", "drivable_seg"} <= set(results)
    assert {"AP", "AP50"} <= set(results["bbox"])
    assert {"mIoU", "pACC"} <= set(results["sem_seg"])
    assert {"mIoU", "mIoU_bdd100k"} <= set(results["drivable_seg"])
    assert os.path.isfile(trained / "inference" / "bdd100k_multitask_val" / "bdd100k" / "det.json")
    with open(trained / "inference" / "results.json") as f:
        assert json.load(f) == json.loads(json.dumps(results))  # what scripts read back


def test_filter_empty_annotations_trains_on_images_not_labeled_for_detection(sample_root, tmp_path):
    # detectron2's own filter raised KeyError on the first image without "annotations"
    train_net.main(args_for(tmp_path, "DATALOADER.FILTER_EMPTY_ANNOTATIONS", "True",
                            "SOLVER.MAX_ITER", "1", "TEST.EVAL_PERIOD", "0"))
    dicts = DatasetCatalog.get("bdd100k_multitask_train")
    assert any("annotations" not in d for d in dicts)
    log = (tmp_path / "log.txt").read_text()
    assert re.search(rf"FILTER_EMPTY_ANNOTATIONS: left out \d+ of {len(dicts)} images", log)
    assert (tmp_path / "model_final.pth").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a refusal without CUDA")
def test_amp_on_cpu_is_refused(trained):
    with pytest.raises(ValueError, match="SOLVER.AMP.ENABLED needs a CUDA device"):
        train_net.setup(args_for(trained, "SOLVER.AMP.ENABLED", "True"))


@pytest.mark.slow
def test_two_cpu_processes_train(sample_root, tmp_path):
    cmd = [sys.executable, os.path.join(REPO, "train_net.py"), "--config-file", TINY,
           "--num-gpus", "2", "SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "4",
           "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / "model_final.pth")
    assert "world size: 2" in result.stderr or "Rank of current process: 0. World size: 2" in (
        result.stdout + result.stderr
    )


def copy_run(trained, out):
    """A copy of the trained run's checkpoints in ``out`` (older ones keep older times)."""
    out.mkdir(exist_ok=True)
    for name in ("model_0000001.pth", "model_final.pth", "last_checkpoint"):
        shutil.copy2(trained / name, out / name)
    return out


def log_of(output_dir):
    return (output_dir / "log.txt").read_text()


@pytest.fixture(scope="module")
def teacher_weights(trained, tmp_path_factory):
    """A detection teacher's checkpoint of the tiny sizes (its model has only the detection
    head)."""
    folder = tmp_path_factory.mktemp("teacher")
    cfg = train_net.setup(args_for(folder, "MODEL.TASKS", "('detection',)"))
    SafeCheckpointer(train_net.Trainer.build_model(cfg), save_dir=str(folder)).save("teacher")
    return str(folder / "teacher.pth")


def test_eval_only_refuses_weights_that_leave_heads_unset(teacher_weights, tmp_path):
    args = args_for(tmp_path, "MODEL.WEIGHTS", teacher_weights, extra=["--eval-only"])
    lacks = f"{teacher_weights}: the checkpoint lacks 104 entries"
    with pytest.raises(ValueError, match=lacks) as error:
        train_net.main(args)
    message = str(error.value)
    assert re.search(r"^  heads\.semantic\.\S+", message, re.MULTILINE), message
    assert re.search(r"^  heads\.drivable\.\S+", message, re.MULTILINE), message
    assert "heads.detection" not in message and "backbone" not in message
    assert len(message.splitlines()) <= 22  # grouped by module, not one line per tensor
    assert not os.path.exists(tmp_path / "inference")  # nothing evaluated, nothing exported


def test_eval_only_without_weights_is_refused(trained, tmp_path):
    with pytest.raises(ValueError, match="set MODEL.WEIGHTS"):
        train_net.main(args_for(tmp_path, extra=["--eval-only"]))


def test_training_from_partial_weights_warns_and_trains(teacher_weights, tmp_path):
    train_net.main(args_for(tmp_path, "MODEL.WEIGHTS", teacher_weights, "SOLVER.MAX_ITER", "1",
                            "DATASETS.TEST", "()"))
    assert os.path.isfile(tmp_path / "model_final.pth")
    log = log_of(tmp_path)
    assert "not found in the checkpoint" in log and "heads.semantic" in log


def test_resume_falls_back_past_a_truncated_last_checkpoint(trained, tmp_path):
    out = copy_run(trained, tmp_path / "run")
    final = out / "model_final.pth"
    final.write_bytes(final.read_bytes()[: final.stat().st_size // 2])
    with umask(0o027):
        train_net.main(args_for(out, "SOLVER.MAX_ITER", "3", "DATASETS.TEST", "()",
                                extra=["--resume"]))
    log = log_of(out)
    assert f"{final}: cannot read this checkpoint; it is truncated or corrupt" in log
    assert "Falling back to the newest checkpoint before it" in log
    assert f"Loading from {out / 'model_0000001.pth'}" in log
    resumed = torch.load(final, weights_only=False)  # written anew, complete
    assert resumed["iteration"] == 2  # one step after the fallback's iteration 1
    # Written under the umask like any other file, not 0600.
    assert stat.S_IMODE(final.stat().st_mode) == 0o640
    assert stat.S_IMODE((out / "last_checkpoint").stat().st_mode) == 0o640


def test_a_corrupt_weights_file_is_named(trained, tmp_path):
    bad = tmp_path / "weights.pth"
    bad.write_bytes(b"not a checkpoint")
    args = args_for(tmp_path, "MODEL.WEIGHTS", str(bad), extra=["--eval-only"])
    with pytest.raises(UnreadableCheckpointError, match=f"{re.escape(str(bad))}: cannot read"):
        train_net.main(args)


def test_resume_removes_temporary_files_of_a_killed_save(trained, tmp_path):
    out = copy_run(trained, tmp_path / "run")
    (out / ".tmp-3f2a9c.pth").write_bytes(b"half a checkpoint")  # what a kill leaves
    (out / ".tmp-77b0e1").write_bytes(b"")  # ... while tagging last_checkpoint
    train_net.main(args_for(out, "DATASETS.TEST", "()", extra=["--resume"]))
    assert not [name for name in os.listdir(out) if name.startswith(".tmp-")]
    assert "Removed 2 temporary file(s) of an interrupted save" in log_of(out)


@pytest.mark.parametrize("opts, message", [
    (["MODEL.TASK_WEIGHTS.SEMANTIC", "-1.0"], "MODEL.TASK_WEIGHTS.SEMANTIC is -1.0"),
    (["MODEL.TASKS", "('detection', 'semantic', 'detection')"],
     "MODEL.TASKS lists 'detection' twice"),
    (["MODEL.SPARSE_RCNN.HIDDEN_DIM", "16"],
     r"MODEL.SPARSE_RCNN.HIDDEN_DIM \(16\) must equal MODEL.FPN.OUT_CHANNELS \(32\)"),
    (["MODEL.SEMANTIC_HEAD.NHEADS", "3"],
     r"MODEL.SEMANTIC_HEAD.HIDDEN_DIM \(32\) must be a multiple of MODEL.SEMANTIC_HEAD.NHEADS"),
    (["PSEUDO_LABELS.SEM_SEG_THRESH", "nan"],
     r"PSEUDO_LABELS.SEM_SEG_THRESH is nan; it must be a number in \[0, 1\]"),
    (["MODEL.ADAPTER.NAME", "NoSuchAdapter"],
     r"MODEL.ADAPTER.NAME is 'NoSuchAdapter', which no imported module registers; registered: "
     r"\[.*'IdentityAdapter', 'LVAdapter'\]"),
    (["MODEL.ADAPTER.NAME", "LVAdapter", "MODEL.ADAPTER.TEXT_ENCODER.NAME", "Nope"],
     r"MODEL.ADAPTER.TEXT_ENCODER.NAME is 'Nope', which no imported module registers; "
     r"registered: \[.*'OpenCLIPTextEncoder'"),
])
def test_bad_config_values_are_refused_naming_the_keys(tmp_path, opts, message):
    with pytest.raises(ValueError, match=message):
        train_net.main(args_for(tmp_path, *opts))


def weights_after_one_iteration(out, *opts):
    train_net.main(args_for(out, "SOLVER.MAX_ITER", "1", "DATASETS.TEST", "()", *opts))
    return torch.load(out / "model_final.pth", weights_only=False)["model"]


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_seed_fixes_the_run_and_lv_adapter_seed_replaces_the_files(
        sample_root, tmp_path, monkeypatch):
    from lv_adapter.config import SEED_VARIABLE

    monkeypatch.delenv(SEED_VARIABLE, raising=False)
    first = weights_after_one_iteration(tmp_path / "a")  # the tiny config's SEED 0
    assert same_weights(first, weights_after_one_iteration(tmp_path / "b"))
    monkeypatch.setenv(SEED_VARIABLE, "3")
    third = weights_after_one_iteration(tmp_path / "c")
    assert not same_weights(first, third)
    assert "SEED: 3" in (tmp_path / "c" / "config.yaml").read_text()
    # the command line wins over the variable
    assert same_weights(first, weights_after_one_iteration(tmp_path / "d", "SEED", "0"))
    monkeypatch.setenv(SEED_VARIABLE, "three")
    with pytest.raises(ValueError, match=r"\$LV_ADAPTER_SEED is 'three'; it must be an integer"):
        train_net.main(args_for(tmp_path / "e"))


@pytest.mark.parametrize("gpus", ["0", "-1"])
def test_no_process_is_refused(tmp_path, gpus):
    cmd = [sys.executable, os.path.join(REPO, "train_net.py"), "--config-file", TINY,
           "--num-gpus", gpus, "OUTPUT_DIR", str(tmp_path)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO,
                            env=subprocess_env())
    assert result.returncode == 2
    assert f"--num-gpus must be >= 1 (GPUs, or GLOO processes on the CPU), got {gpus}" in (
        result.stderr)


def test_a_missing_datasets_root_names_detectron2_datasets(tmp_path):
    missing = tmp_path / "no-such-root"
    env = dict(os.environ, DETECTRON2_DATASETS=str(missing))
    cmd = [sys.executable, os.path.join(REPO, "train_net.py"), "--config-file", TINY,
           "OUTPUT_DIR", str(tmp_path / "out"), "MODEL.DEVICE", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO, env=env)
    assert result.returncode != 0
    assert f"{missing / 'bdd100k'} not found" in result.stderr, result.stderr[-3000:]
    assert f"DETECTRON2_DATASETS sets the datasets root that holds bdd100k/ (it is " \
           f"'{missing}')" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision needs a CUDA device")
def test_mixed_precision_trains_on_cuda(sample_root, tmp_path):
    """SOLVER.AMP.ENABLED on a GPU: fp16 FPN maps reach the RoI pooler of the detection head."""
    argv = ["--config-file", TINY, "OUTPUT_DIR", str(tmp_path), "MODEL.DEVICE", "cuda",
            "SOLVER.AMP.ENABLED", "True", "SOLVER.MAX_ITER", "3"]
    train_net.main(default_argument_parser().parse_args(argv))
    assert os.path.isfile(tmp_path / "model_final.pth")
