"""Co-training strategies of table 1 (DATALOADER.TASK_STRATEGY): task frequencies, the same tasks
in every process and across a resume, batches labeled for their task, bad configs."""
import functools
import itertools
import json
import os
from collections import Counter

import numpy as np
import pytest
from detectron2.data import DatasetCatalog
from detectron2.utils import comm

import train_net
from bad_data import TINY, read_log, reset_process_state, train_args
from conftest import REPO
from lv_adapter import compat
from lv_adapter.config import build_config
from lv_adapter.data.task_batches import (
    TASK_SCALAR,
    TaskBatchSampler,
    build_task_batch_loader,
    task_pools,
)
from lv_adapter.data.task_schedule import TaskSchedule, task_probabilities
from lv_adapter.tasks import BUILTIN_TASKS, DETECTION, DRIVABLE, SEMANTIC
from task_batch_worker import record_batches

ITERS = 3000
TRAIN = "bdd100k_multitask_train"  # the sample's Full-like set: images with 1 to 3 tasks


@pytest.fixture(autouse=True)
def undo_setup():
    yield
    reset_process_state()


def tiny_cfg(strategy, *opts):
    return build_config(TINY, ["DATALOADER.TASK_STRATEGY", strategy, *opts])


def frequencies(tasks, num_tasks):
    return np.bincount(tasks, minlength=num_tasks) / len(tasks)


def labeled_counts():
    dicts = DatasetCatalog.get(TRAIN)
    return [sum(task in d["labeled_tasks"] for d in dicts) for task in BUILTIN_TASKS]


# -- the schedule: frequencies, blocks, seeds ------------------------------------------------

def test_uniform_draws_each_task_a_third_of_the_iterations():
    tasks = TaskSchedule(3, task_probabilities("uniform", [10, 30, 60]), seed=0).tasks(0, ITERS)
    assert np.allclose(frequencies(tasks, 3), 1 / 3, atol=0.035)


def test_weighted_draws_tasks_in_proportion_to_their_images():
    probabilities = task_probabilities("weighted", [10, 30, 60])
    assert probabilities == [0.1, 0.3, 0.6]
    tasks = TaskSchedule(3, probabilities, seed=0).tasks(0, ITERS)
    assert np.allclose(frequencies(tasks, 3), [0.1, 0.3, 0.6], atol=0.03)


def test_round_robin_cycles_exactly():
    assert task_probabilities("round_robin", [10, 30, 60]) is None
    tasks = TaskSchedule(3, None).tasks(5, 5 + ITERS)
    assert tasks.tolist() == [i % 3 for i in range(5, 5 + ITERS)]


def test_a_task_is_a_function_of_seed_and_iteration_only():
    schedule = TaskSchedule(3, [0.2, 0.3, 0.5], seed=7)
    whole = schedule.tasks(0, ITERS)
    # slices across the block boundaries and single iterations agree with the whole sequence
    assert schedule.tasks(1000, 2100).tolist() == whole[1000:2100].tolist()
    some = [0, 1023, 1024, 2999]
    assert [schedule.task(i) for i in some] == whole[some].tolist()
    assert TaskSchedule(3, [0.2, 0.3, 0.5], seed=7).tasks(0, ITERS).tolist() == whole.tolist()
    assert TaskSchedule(3, [0.2, 0.3, 0.5], seed=8).tasks(0, ITERS).tolist() != whole.tolist()
    assert schedule.draws_before(2000).tolist() == np.bincount(whole[:2000], minlength=3).tolist()


# -- the sampler: processes and resume -------------------------------------------------------

def batches(sampler, count):
    return list(itertools.islice(iter(sampler), count))


def test_processes_train_the_same_task_on_different_images():
    schedule = TaskSchedule(3, [0.2, 0.3, 0.5], seed=3)
    sizes = [8, 12, 20]
    ranks = [batches(TaskBatchSampler(schedule, sizes, 2, rank, 2), 300) for rank in (0, 1)]
    for i, (a, b) in enumerate(zip(*ranks)):
        task = schedule.task(i)
        assert {k for k, _ in a} == {k for k, _ in b} == {task}
        assert not {n for _, n in a} & {n for _, n in b}
    # together the processes go through each task's images epoch by epoch: every image of the
    # smallest pool once in its first 8 images (2 draws of the global batch of 4)
    firsts = [n for batch in zip(*ranks) for part in batch for k, n in part if k == 0][:8]
    assert sorted(firsts) == list(range(8))


def test_a_sampler_started_later_continues_the_same_batches():
    schedule = TaskSchedule(3, task_probabilities("weighted", [5, 9, 3]), seed=1)
    whole = batches(TaskBatchSampler(schedule, [5, 9, 3], 2, 1, 2), 600)
    resumed = batches(TaskBatchSampler(schedule, [5, 9, 3], 2, 1, 2, start_iter=437), 163)
    assert resumed == whole[437:]


# -- train_net's training loader --------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["uniform", "weighted", "round_robin"])
def test_the_training_loader_draws_tasks_as_its_strategy_says(sample_root, strategy):
    counts = labeled_counts()
    loader = train_net.Trainer.build_train_loader(tiny_cfg(strategy))
    keys = batches(loader.data_loader.batch_sampler, ITERS)  # the loader's own keys, unmapped
    tasks = np.array([batch[0][0] for batch in keys])
    expected = {"uniform": [1 / 3] * 3, "weighted": np.array(counts) / sum(counts)}
    if strategy == "round_robin":
        assert tasks.tolist() == [i % 3 for i in range(ITERS)]
    else:
        assert np.allclose(frequencies(tasks, 3), expected[strategy], atol=0.035)
    assert all(len(batch) == 2 and len({k for k, _ in batch}) == 1 for batch in keys)


def test_mixed_orientations_are_warned_about(caplog):
    dicts = [{"width": 8, "height": 4, "labeled_tasks": [t]} for t in BUILTIN_TASKS]
    build = functools.partial(build_task_batch_loader, mapper=lambda d: d, tasks=BUILTIN_TASKS,
                              strategy="uniform", batch_size=1)
    with caplog.at_level("WARNING", logger="lv_adapter.data.task_batches"):
        build(dicts)
        assert "portrait" not in caplog.text
        build(dicts + [{"width": 4, "height": 8, "labeled_tasks": [DRIVABLE]}])
    assert "3 landscape and 1 portrait training images" in caplog.text


def test_each_batch_is_labeled_for_its_task_and_trains_that_task_only(sample_root):
    cfg = tiny_cfg("uniform", "DATALOADER.NUM_WORKERS", 2)  # workers keep the batch order
    schedule = TaskSchedule(3, [1 / 3] * 3, seed=0)
    labeled = {d["image_id"]: d["labeled_tasks"] for d in DatasetCatalog.get(TRAIN)}
    own, several = Counter(), 0  # images with targets of their batch's task; with several tasks
    loader = train_net.Trainer.build_train_loader(cfg)
    for i, batch in enumerate(itertools.islice(iter(loader), 24)):
        task = BUILTIN_TASKS[schedule.task(i)]
        for x in batch:
            assert task in labeled[x["image_id"]]
            assert x["labeled_tasks"] == (task,)
            targets = {DETECTION: len(x["instances"]) > 0,
                       SEMANTIC: (x["sem_seg"] != 255).any().item(),
                       DRIVABLE: (x["drivable_seg"] != 255).any().item()}
            # the labels of the image's other tasks do not reach the model
            assert not any(found for t, found in targets.items() if t != task)
            own[task] += targets[task]
            several += len(labeled[x["image_id"]]) > 1
    assert set(own) == set(BUILTIN_TASKS) and all(own.values()) and several > 0


@pytest.mark.slow
def test_two_processes_draw_the_same_tasks_and_different_images(sample_root, tmp_path):
    args = train_args(tmp_path, "DATALOADER.TASK_STRATEGY", "uniform", "SOLVER.IMS_PER_BATCH", 4)
    compat.launch(record_batches, 2, args=(args, str(tmp_path), 12))
    ranks = [json.loads((tmp_path / f"batches.rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 12
    # one process with the whole batch of 4: the two processes take its halves
    pools = task_pools(DatasetCatalog.get(TRAIN), BUILTIN_TASKS)
    schedule = TaskSchedule(3, [1 / 3] * 3, seed=0)
    sampler = TaskBatchSampler(schedule, [len(p) for p in pools], 4)
    for a, b, whole in zip(*ranks, batches(sampler, 12)):
        assert [name for name, _ in a + b] == [pools[k][i]["image_id"] for k, i in whole]
        assert [tasks for _, tasks in a + b] == [[BUILTIN_TASKS[k]] for k, _ in whole]
    assert len({a[0][1][0] for a in ranks[0]}) > 1  # not one task all along


def trained_tasks(out, max_iter, resume=False, *opts):
    """Train with train_net's Trainer; return {iteration: task index} from its event storage."""
    cfg = train_net.setup(train_args(out, "DATALOADER.TASK_STRATEGY", "uniform",
                                     "SOLVER.MAX_ITER", max_iter, *opts))
    trainer = train_net.Trainer(cfg)
    trainer.resume_or_load(resume=resume)
    trainer.train()
    return {it: int(value) for value, it in trainer.storage.history(TASK_SCALAR).values()}


@pytest.mark.slow
def test_a_resumed_run_continues_the_task_sequence(sample_root, tmp_path):
    whole = trained_tasks(tmp_path / "whole", 6)
    schedule = TaskSchedule(3, [1 / 3] * 3, seed=0)
    assert whole == {i: schedule.task(i) for i in range(6)}
    # a resume that restarted the task sequence would train iterations 0 and 1's tasks again
    assert [whole[0], whole[1]] != [whole[4], whole[5]]
    trained_tasks(tmp_path / "cut", 4)  # its last checkpoint: iteration 3
    resumed = trained_tasks(tmp_path / "cut", 6, True)
    assert resumed == {4: whole[4], 5: whole[5]}


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["zeroing", "uniform", "weighted", "round_robin"])
def test_train_net_trains_with_each_strategy(sample_root, tmp_path, strategy):
    train_net.main(train_args(tmp_path, "DATALOADER.TASK_STRATEGY", strategy,
                              "SOLVER.MAX_ITER", 2))
    assert (tmp_path / "model_final.pth").is_file()
    log = read_log(tmp_path)
    assert (f"Co-training strategy {strategy!r}" in log) == (strategy != "zeroing")
    metrics = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert (TASK_SCALAR in metrics[-1]) == (strategy != "zeroing")


# -- bad configs -------------------------------------------------------------------------------

@pytest.mark.parametrize("opts, message", [
    (["DATALOADER.TASK_STRATEGY", "random"],
     r"DATALOADER.TASK_STRATEGY is 'random'; it must be one of \('zeroing', 'uniform'"),
    (["DATALOADER.TASK_STRATEGY", "uniform", "DATALOADER.SAMPLER_TRAIN",
      "TaskRepeatFactorSampler"],
     "DATALOADER.SAMPLER_TRAIN 'TaskRepeatFactorSampler' conflicts with "
     "DATALOADER.TASK_STRATEGY 'uniform'"),
    (["DATALOADER.TASK_STRATEGY", "weighted", "DATALOADER.TASK_SEED", -1],
     "DATALOADER.TASK_SEED is -1; it must be an integer >= 0"),
])
def test_bad_strategy_configs_are_refused_naming_the_keys(tmp_path, opts, message):
    with pytest.raises(ValueError, match=message):
        train_net.main(train_args(tmp_path, *opts))


def test_zeroing_has_no_task_schedule():
    with pytest.raises(ValueError, match="DATALOADER.TASK_STRATEGY 'zeroing' has no task schedule"):
        task_probabilities("zeroing", [1, 2, 3])


def test_zeroing_keeps_the_task_repeat_factor_sampler():
    cfg = build_config(TINY, ["DATALOADER.SAMPLER_TRAIN", "TaskRepeatFactorSampler"])
    assert cfg.DATALOADER.TASK_STRATEGY == "zeroing"


def test_a_trained_task_without_labeled_images_is_refused(sample_root, tmp_path):
    opts = ["DATALOADER.TASK_STRATEGY", "uniform", "DATASETS.TRAIN", "('bdd100k_det_train',)",
            "MODEL.TASKS", "['detection', 'semantic']"]
    with pytest.raises(ValueError, match="MODEL.TASKS trains 'semantic', but no image"):
        train_net.main(train_args(tmp_path, *opts))
    dicts = DatasetCatalog.get("bdd100k_det_train")
    with pytest.raises(ValueError, match="DATALOADER.TASK_STRATEGY 'uniform' draws a batch of "
                                         "each task of MODEL.TASKS, but no training image is "
                                         "labeled for 'semantic'"):
        task_pools(dicts, ["detection", "semantic"])


def test_a_batch_that_cannot_be_split_among_processes_is_refused(sample_root, monkeypatch):
    monkeypatch.setattr(comm, "get_world_size", lambda: 3)
    with pytest.raises(ValueError, match=r"SOLVER.IMS_PER_BATCH \(2\) must be divisible by the "
                                         r"number of training processes \(3\)"):
        train_net.Trainer.build_train_loader(tiny_cfg("round_robin"))


# -- table 1 configs ---------------------------------------------------------------------------

def test_table1_rows_differ_from_the_zeroing_student_in_strategy_and_data_only():
    rows = {"zeroing_loss": ("zeroing", False), "uniform_sampler": ("uniform", False),
            "weighted_sampler": ("weighted", False), "round_robin": ("round_robin", False),
            "self_training": ("zeroing", True)}
    base = build_config(os.path.join(REPO, "configs", "bdd100k", "multitask_R50.yaml"))
    for name, (strategy, pseudo) in rows.items():
        cfg = build_config(os.path.join(REPO, "configs", "bdd100k", "table1", f"{name}.yaml"))
        assert (cfg.DATALOADER.TASK_STRATEGY, cfg.OUTPUT_DIR) == (
            strategy, f"output/bdd100k/table1/{name}")
        train = "bdd100k_disjoint_normal_train" + "_pseudo" * pseudo
        assert cfg.DATASETS.TRAIN == (train,)
        cfg.DATALOADER.TASK_STRATEGY, cfg.OUTPUT_DIR = "zeroing", base.OUTPUT_DIR
        cfg.DATASETS.TRAIN = base.DATASETS.TRAIN
        assert cfg.dump() == base.dump()
    lv = build_config(os.path.join(REPO, "configs", "bdd100k", "table1", "lv_adapter.yaml"))
    student = build_config(os.path.join(REPO, "configs", "bdd100k", "lv_adapter",
                                        "lv_adapter_R50.yaml"))
    assert lv.DATASETS.TRAIN == ("bdd100k_disjoint_normal_train_pseudo",)
    lv.DATASETS.TRAIN, lv.OUTPUT_DIR = student.DATASETS.TRAIN, student.OUTPUT_DIR
    assert lv.dump() == student.dump()
