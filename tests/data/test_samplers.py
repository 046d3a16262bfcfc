"""Task sampling: repeat factors from labeled tasks, the sampler's draw frequencies, the loader."""
import itertools
import os
from collections import Counter

import pytest
from detectron2.data import DatasetCatalog

import train_net
from lv_adapter.config import build_config
from lv_adapter.data.samplers import build_task_sampler, task_repeat_factors
from conftest import REPO

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")

RECORDS = [
    {"file_name": "a.jpg", "labeled_tasks": ("detection", "drivable")},
    {"file_name": "b.jpg", "labeled_tasks": ("semantic",)},
    {"file_name": "c.jpg", "labeled_tasks": ("detection", "semantic", "drivable")},
    {"file_name": "d.jpg", "labeled_tasks": ("drivable",)},
]


def sampler_cfg(**factors):
    opts = ["DATALOADER.SAMPLER_TRAIN", "TaskRepeatFactorSampler"]
    for task, factor in factors.items():
        opts += [f"DATALOADER.TASK_REPEAT_FACTORS.{task.upper()}", factor]
    return build_config(TINY, opts)


def test_an_image_gets_the_largest_factor_of_its_tasks():
    factors = task_repeat_factors(RECORDS, {"semantic": 3.0, "drivable": 1.5})
    assert factors.tolist() == [1.5, 3.0, 3.0, 1.5]


def test_tasks_left_out_count_one():
    assert task_repeat_factors(RECORDS, {}).tolist() == [1.0] * 4


@pytest.mark.parametrize("factors, message", [
    ({"depth": 2.0}, "unknown task 'depth'"),
    ({"semantic": 0.5}, "TASK_REPEAT_FACTORS.SEMANTIC must be >= 1, got 0.5"),
    ({"semantic": float("nan")}, "TASK_REPEAT_FACTORS.SEMANTIC must be >= 1"),
])
def test_bad_factors_are_refused_with_the_key_named(factors, message):
    with pytest.raises(ValueError, match=message):
        task_repeat_factors(RECORDS, factors)


def test_a_record_without_tasks_is_refused_by_name():
    with pytest.raises(ValueError, match="e.jpg: a training record without labeled_tasks"):
        task_repeat_factors(RECORDS + [{"file_name": "e.jpg"}], {"semantic": 2.0})


def test_semantic_images_are_drawn_as_often_as_their_factor_says():
    sampler = build_task_sampler(sampler_cfg(semantic=3.0), RECORDS)
    counts = Counter(itertools.islice(iter(sampler), 8000))
    per_factor_one = (counts[0] + counts[3]) / 2
    # Images 1 and 2 are labeled for semantics: 3x as frequent as the two others.
    assert 2.7 < counts[1] / per_factor_one < 3.3
    assert 2.7 < counts[2] / per_factor_one < 3.3


def test_detectron2_sampler_names_are_left_to_detectron2():
    cfg = build_config(TINY, ["DATALOADER.SAMPLER_TRAIN", "TrainingSampler"])
    assert build_task_sampler(cfg, RECORDS) is None


def test_the_training_loader_oversamples_semantic_images(sample_root):
    cfg = sampler_cfg(semantic=4.0)
    cfg.DATALOADER.NUM_WORKERS = 0
    dataset = DatasetCatalog.get(cfg.DATASETS.TRAIN[0])
    share = sum("semantic" in d["labeled_tasks"] for d in dataset) / len(dataset)
    batches = itertools.islice(iter(train_net.Trainer.build_train_loader(cfg)), 20)
    drawn = [x for batch in batches for x in batch]
    drawn_share = sum("semantic" in x["labeled_tasks"] for x in drawn) / len(drawn)
    # With factor 4 the expected share is 4s / (4s + 1 - s), well above the uniform s.
    expected = 4 * share / (4 * share + 1 - share)
    assert 0 < share < 1
    assert drawn_share > share + 0.5 * (expected - share)
