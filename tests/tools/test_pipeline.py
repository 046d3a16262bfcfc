"""tools/pipeline.py end to end on tiny configs: split, teachers, pseudo labels, students, table;
an interrupted pipeline continues where it stopped."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO, subprocess_env
from lv_adapter.data.sample import write_sample_bdd100k

TINY = os.path.join(REPO, "configs", "quick_schedules")
TEST_SETS = {"detection": "bdd100k_det_val", "semantic": "bdd100k_sem_seg_val",
             "drivable": "bdd100k_drivable_val"}


def write_tiny_recipe(folder, broken_student=False):
    """The six configs of a recipe, at the tests' tiny sizes and 2 iterations each."""
    os.makedirs(folder, exist_ok=True)
    base = os.path.join(TINY, "multitask_tiny.yaml")
    for task, test_set in TEST_SETS.items():
        _write(folder, f"teacher_{task}.yaml", base, [
            f'MODEL: {{TASKS: ["{task}"]}}',
            f'DATASETS: {{TRAIN: ["bdd100k_disjoint_normal_train"], TEST: ["{test_set}"]}}',
            'DATALOADER: {TASK_STRATEGY: "uniform"}',
        ])
    _write(folder, "zeroing_loss.yaml", base,
           ['DATASETS: {TRAIN: ["bdd100k_disjoint_normal_train"]}'])
    pseudo = ['DATASETS: {TRAIN: ["bdd100k_disjoint_normal_train_pseudo"]}']
    _write(folder, "self_training.yaml", base, pseudo)
    adapter = 'MODEL: {ADAPTER: {NAME: "NoSuchAdapter"}}' if broken_student else ""
    _write(folder, "lv_adapter.yaml", os.path.join(TINY, "lv_adapter_tiny.yaml"),
           pseudo + [adapter])


def _write(folder, name, base, lines):
    common = ["SOLVER: {MAX_ITER: 2, CHECKPOINT_PERIOD: 1, ADAPT_ITERS: 0}"]
    with open(os.path.join(folder, name), "w") as f:
        f.write("\n".join([f'_BASE_: "{base}"', *common, *lines]) + "\n")


def run_pipeline(root, out, configs, *opts, sizes="semantic=3,detection=4,drivable=5"):
    env = subprocess_env(DETECTRON2_DATASETS=str(root))
    cmd = [sys.executable, os.path.join(REPO, "tools", "pipeline.py"), "--root", str(root),
           "--out", str(out), "--configs", str(configs), "--split-sizes", sizes, *opts]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.measurement
def test_pipeline_runs_every_stage_resumes_after_a_failure_and_checks_what_it_reuses(tmp_path):
    root, out, configs = tmp_path / "datasets", tmp_path / "out", tmp_path / "configs"
    write_sample_bdd100k(str(root), num_images=40, width=128, height=72, seed=1)
    write_tiny_recipe(configs, broken_student=True)
    first = run_pipeline(root, out, configs)
    assert first.returncode != 0
    assert "stage lv_adapter failed" in first.stderr, first.stdout[-3000:] + first.stderr[-3000:]
    pseudo = root / "bdd100k" / "pseudo" / "disjoint_normal"
    for task in TEST_SETS:
        assert (out / f"teacher_{task}" / "inference" / "results.json").is_file()
        assert (pseudo / f"summary_{task}.json").is_file()
    assert (out / "self_training" / "inference" / "results.json").is_file()

    write_tiny_recipe(configs)  # the cause fixed: the same command continues
    second = run_pipeline(root, out, configs)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    stages = ["split", *(f"teacher_{t}" for t in TEST_SETS), "zeroing_loss", "self_training"]
    for stage in stages:
        assert f"{stage}: complete, skipped" in second.stdout
    for task in TEST_SETS:  # the labeling tool checked that its teacher wrote them
        assert f"{task} pseudo labels in {pseudo} are complete" in second.stdout
    assert "lv_adapter: done" in second.stdout

    rows = {row["model"]: row for row in json.loads((out / "table.json").read_text())}
    assert list(rows) == ["teacher_detection", "teacher_semantic", "teacher_drivable",
                          "zeroing_loss", "self_training", "lv_adapter"]
    assert rows["teacher_semantic"]["sem mIoU"] is not None
    assert rows["teacher_semantic"]["det AP50"] is None  # a teacher is judged on its task only
    for student in ("zeroing_loss", "self_training", "lv_adapter"):
        row = rows[student]
        assert row["iterations"] == 2
        assert None not in (row["det AP50"], row["sem mIoU"], row["drivable mIoU"]), row
    assert (out / "table.md").read_text().count("\n") == 2 + len(rows)

    # What exists must be what this run would make: another --split-sizes on the same root, or
    # new teachers (another --out) over the old ones' pseudo labels, are refused naming what
    # differs, instead of training on what is there.
    other = run_pipeline(root, out, configs, sizes="semantic=2,detection=4,drivable=5")
    assert other.returncode != 0
    assert "was drawn with" in other.stderr and "'semantic': 2" in other.stderr
    # the seed is fixed (tiny configs): the same recipe would train the same teachers again
    new_teachers = run_pipeline(root, tmp_path / "out2", configs, "SOLVER.BASE_LR", "0.0002")
    assert new_teachers.returncode != 0
    assert "stage pseudo_detection failed" in new_teachers.stderr
    assert "were written by another teacher" in new_teachers.stderr
    assert "teacher weights: recorded" in new_teachers.stderr
