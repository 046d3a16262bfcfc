"""build_multitask_evaluator: the right evaluators, correct results across processes."""
import datetime
import json
import math
import os
import pickle
import socket
import uuid

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances

import lv_adapter  # noqa: F401  (installs the detectron2._C placeholder first)
from lv_adapter.config import add_lv_adapter_config
from lv_adapter.evaluation import build_multitask_evaluator
from lv_adapter.tasks import BUILTIN_TASKS, DETECTION, DRIVABLE, SEMANTIC
from lv_adapter.tasks.detection import DET_CLASSES
from lv_adapter.tasks.drivable import DRIVABLE_CLASSES
from lv_adapter.tasks.semantic import SEM_SEG_CLASSES
from lv_adapter.utils.io import write_image

HEIGHT, WIDTH = 24, 32
RESULT_KEYS = {DETECTION: "bbox", SEMANTIC: "sem_seg", DRIVABLE: "drivable_seg"}


def _dataset_dicts(folder, num_images=6):
    """Images labeled for rotating subsets of the tasks, with random boxes and masks (seed 0)."""
    rng = np.random.default_rng(0)
    label_sets = [BUILTIN_TASKS, (DETECTION,), (SEMANTIC, DRIVABLE), (DRIVABLE,),
                  (DETECTION, SEMANTIC)]
    dicts = []
    for index in range(num_images):
        image_id = f"img{index}"
        tasks = label_sets[index % len(label_sets)]
        record = {"file_name": f"/nowhere/{image_id}.jpg", "image_id": image_id,
                  "height": HEIGHT, "width": WIDTH, "labeled_tasks": list(tasks)}
        if DETECTION in tasks:
            record["annotations"] = [
                {"bbox": _random_box(rng), "bbox_mode": BoxMode.XYXY_ABS,
                 "category_id": int(rng.integers(3)), "iscrowd": int(rng.random() < 0.2)}
                for _ in range(4)
            ]
        for task, key, num_classes in ((SEMANTIC, "sem_seg_file_name", len(SEM_SEG_CLASSES)),
                                       (DRIVABLE, "drivable_file_name", len(DRIVABLE_CLASSES))):
            if task in tasks:
                record[key] = os.path.join(folder, f"{task}_{image_id}.png")
                mask = rng.integers(0, num_classes, (HEIGHT, WIDTH)).astype(np.uint8)
                write_image(record[key], mask)
        dicts.append(record)
    return dicts


def _random_box(rng):
    x1, y1 = rng.uniform(0, WIDTH - 8), rng.uniform(0, HEIGHT - 8)
    return [x1, y1, x1 + rng.uniform(4, 8), y1 + rng.uniform(4, 8)]


def _outputs(dicts):
    """Random model outputs of every image (seed 1), the same in every process."""
    generator = torch.Generator().manual_seed(1)
    outputs = []
    for _ in dicts:
        instances = Instances((HEIGHT, WIDTH))
        xy = torch.rand(5, 2, generator=generator) * 20
        wh = 4 + torch.rand(5, 2, generator=generator) * 4
        instances.pred_boxes = Boxes(torch.cat([xy, xy + wh], dim=1))
        instances.scores = torch.rand(5, generator=generator)
        instances.pred_classes = torch.randint(0, 3, (5,), generator=generator)
        outputs.append({
            "instances": instances,
            "sem_seg": torch.rand(len(SEM_SEG_CLASSES), HEIGHT, WIDTH, generator=generator),
            "drivable_seg": torch.rand(len(DRIVABLE_CLASSES), HEIGHT, WIDTH, generator=generator),
        })
    return outputs


def _register(dicts, tasks=BUILTIN_TASKS):
    """Register ``dicts``; ``tasks`` None leaves ``tasks`` out of the metadata."""
    name = f"test_build_{uuid.uuid4().hex}"
    DatasetCatalog.register(name, lambda: dicts)
    metadata = {"thing_classes": list(DET_CLASSES)}
    if tasks is not None:
        metadata["tasks"] = list(tasks)
    MetadataCatalog.get(name).set(**metadata)
    return name


def _run(evaluator, dicts, outputs):
    evaluator.reset()
    keep = ("file_name", "image_id", "height", "width", "labeled_tasks")
    for record, output in zip(dicts, outputs):  # batches of one, as in inference_on_dataset
        evaluator.process([{k: record[k] for k in keep}], [output])
    return evaluator.evaluate()


@pytest.fixture(scope="module")
def dicts(tmp_path_factory):
    return _dataset_dicts(str(tmp_path_factory.mktemp("masks")))


@pytest.mark.parametrize(
    "model_tasks, dataset_tasks, expected",
    [
        (BUILTIN_TASKS, BUILTIN_TASKS, BUILTIN_TASKS),
        (BUILTIN_TASKS, (DETECTION, DRIVABLE), (DETECTION, DRIVABLE)),
        ((SEMANTIC, DRIVABLE), BUILTIN_TASKS, (SEMANTIC, DRIVABLE)),
        (DETECTION, (DETECTION, SEMANTIC), (DETECTION,)),
    ],
)
def test_evaluates_the_tasks_of_both_model_and_dataset(dicts, model_tasks, dataset_tasks, expected):
    evaluator = build_multitask_evaluator(model_tasks, _register(dicts, dataset_tasks), None)
    results = _run(evaluator, dicts, _outputs(dicts))
    assert set(results) == {RESULT_KEYS[task] for task in expected}


def test_takes_the_model_tasks_from_a_config(dicts):
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    cfg.MODEL.TASKS = [DRIVABLE]
    results = _run(build_multitask_evaluator(cfg, _register(dicts), None), dicts, _outputs(dicts))
    assert set(results) == {"drivable_seg"}


def test_dataset_tasks_come_from_the_dicts_without_metadata(dicts):
    only_drivable = [d for d in dicts if d["labeled_tasks"] == [DRIVABLE]]
    name = _register(only_drivable, tasks=None)
    results = _run(build_multitask_evaluator(BUILTIN_TASKS, name, None), only_drivable,
                   _outputs(only_drivable))
    assert set(results) == {"drivable_seg"}
    name = _register(dicts, tasks=None)  # every task is labeled on some image
    evaluator = build_multitask_evaluator(BUILTIN_TASKS, name, None)
    assert set(_run(evaluator, dicts, _outputs(dicts))) == {"bbox", "sem_seg", "drivable_seg"}


def test_no_common_task_is_an_error(dicts):
    name = _register(dicts, (DETECTION,))
    with pytest.raises(ValueError, match="nothing to evaluate.*'semantic'.*'detection'"):
        build_multitask_evaluator([SEMANTIC], name, None)


def test_unknown_task_is_an_error(dicts):
    with pytest.raises(ValueError, match=r"unknown task\(s\) \['lanes'\]"):
        build_multitask_evaluator(["lanes", DETECTION], _register(dicts), None)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _distributed_worker(rank, world_size, port, dicts, out_dir):
    """One of ``world_size`` gloo processes evaluating every world_size-th image."""
    # The timeout turns a lost partner into an error instead of a hung test.
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=world_size,
        timeout=datetime.timedelta(seconds=60),
    )
    try:
        name = _register(dicts)  # in the worker: a spawned (not forked) one has empty catalogs
        evaluator = build_multitask_evaluator(BUILTIN_TASKS, name, out_dir)
        mine = slice(rank, None, world_size)
        results = _run(evaluator, dicts[mine], _outputs(dicts)[mine])
        with open(os.path.join(out_dir, f"results{rank}.pkl"), "wb") as f:
            pickle.dump(dict(results), f)
    finally:
        dist.destroy_process_group()


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        for metric, value in a[key].items():
            assert value == pytest.approx(b[key][metric]) or (
                math.isnan(value) and math.isnan(b[key][metric])), (key, metric)


def test_two_processes_give_the_single_process_results(dicts, tmp_path):
    single_dir, multi_dir = str(tmp_path / "single"), str(tmp_path / "multi")
    os.makedirs(multi_dir)
    evaluator = build_multitask_evaluator(BUILTIN_TASKS, _register(dicts), single_dir)
    single = _run(evaluator, dicts, _outputs(dicts))
    # fork: a spawned process would spend seconds importing torch and detectron2 again.
    mp.start_processes(_distributed_worker, args=(2, _free_port(), dicts, multi_dir), nprocs=2,
                       start_method="fork")
    results = []
    for rank in range(2):
        with open(os.path.join(multi_dir, f"results{rank}.pkl"), "rb") as f:
            results.append(pickle.load(f))
    assert results[1] == {}  # only the main process returns results
    _assert_same(results[0], single)
    assert 0 < single["bbox"]["AP"] < 100  # random predictions: a non-trivial check
    # The main process wrote the exports of all images, the same as a single process.
    for export in ("det.json", "sem_seg", "drivable"):
        _assert_same_export(os.path.join(single_dir, "bdd100k", export),
                            os.path.join(multi_dir, "bdd100k", export))


def _assert_same_export(single, multi):
    if single.endswith(".json"):
        with open(single) as f, open(multi) as g:
            assert json.load(f) == json.load(g)
        return
    names = sorted(os.listdir(single))
    assert names and names == sorted(os.listdir(multi))
    for name in names:
        with open(os.path.join(single, name), "rb") as f:
            expected = f.read()
        with open(os.path.join(multi, name), "rb") as f:
            assert f.read() == expected, name
