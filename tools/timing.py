"""What the speed benchmarks share: models of a config with random weights (speed does not depend
on them), random images, timers that wait for the GPU, medians over rounds in which the models
take turns (so that the machine's drift hits each alike), a training batch and step, and the
benchmarks' common command line. Used by tools/benchmark_speed.py, tools/benchmark_export.py and
projects/LaneMarking/tools/benchmark_lanes.py.
"""
import argparse
import os
import statistics
import time

import numpy as np
import torch
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from tqdm import tqdm

from lv_adapter import build_config
from lv_adapter.engine import fold_frozen_norms
from lv_adapter.tasks import get_task, mask_task_names, task_names

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = (1280, 720)  # (width, height) of the paper's images


def load_model(config_name, train, opts=()):
    """Build the model of ``configs/<config_name>`` (or of an absolute path; random weights)
    on MODEL.DEVICE."""
    cfg = model_config(config_name, opts)
    torch.manual_seed(0)
    model = build_model(cfg).train(train)
    if not train:
        fold_frozen_norms(model)
    return model


def random_image(seed, size=SIZE):
    """[3, H, W] uint8 for ``size`` (width, height)."""
    rng = np.random.default_rng(seed)
    return torch.as_tensor(rng.integers(0, 255, (3, size[1], size[0]), dtype=np.uint8))


def _synchronize():
    # CUDA runs asynchronously: a timer must wait for the queued kernels.
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn):
    """Seconds ``fn()`` takes, the GPU's queued work included."""
    _synchronize()
    start = time.perf_counter()
    fn()
    _synchronize()
    return time.perf_counter() - start


def infer(model, image):
    """A callable running ``model`` on ``image`` ([3, H, W]) without gradients."""
    height, width = image.shape[1:]

    def run():
        with torch.no_grad():
            model([{"image": image, "height": height, "width": width}])
    return run


def median_seconds(fns, rounds):
    """{name: callable} -> {name: median seconds}: each called once to warm up, then once per
    round, interleaved so that the machine's drift hits every callable alike."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in tqdm(range(rounds), desc="steps"):
        for name, fn in fns.items():
            times[name].append(timed(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def median_inference_seconds(models, rounds, size=SIZE):
    """{name: model} -> {name: median seconds per image}, the models interleaved per round (a
    new image each round) after one warm-up call each (first calls allocate; caches fill)."""
    image = random_image(0, size)
    for model in models.values():
        infer(model, image)()
    times = {name: [] for name in models}
    for r in tqdm(range(rounds), desc="rounds"):
        image = random_image(r + 1, size)
        for name, model in models.items():
            times[name].append(timed(infer(model, image)))
    return {name: statistics.median(t) for name, t in times.items()}


def where():
    if torch.cuda.is_available():
        return torch.cuda.get_device_name()
    return f"CPU, {torch.get_num_threads()} threads"


def training_batch(size=SIZE, num_images=2):
    """``num_images`` random images of ``size`` (width, height) labeled for every task."""
    width, height = size
    batch = []
    for seed in range(num_images):
        rng = np.random.default_rng(seed)
        instances = Instances((height, width))
        box = min(150, width // 4, height // 4)
        xy = rng.uniform(0, [width - box, height - box], (10, 2))
        boxes = np.concatenate([xy, xy + box], axis=1)
        instances.gt_boxes = Boxes(torch.as_tensor(boxes, dtype=torch.float32))
        instances.gt_classes = torch.as_tensor(rng.integers(0, 10, 10))
        image = {"image": random_image(seed, size), "instances": instances,
                 "labeled_tasks": task_names()}
        for task in map(get_task, mask_task_names()):  # a project's mask task too
            image[task.input_key] = torch.as_tensor(
                rng.integers(0, len(task.classes), (height, width)))
        batch.append(image)
    return batch


def train_step(model, batch):
    """A callable running one training step (forward, backward, AdamW step) on ``batch``."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-5)

    def step():
        loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def scaled(size, scale):
    """(width, height) times ``scale``, at least 64x36 (the smallest the models take)."""
    return max(64, round(size[0] * scale)), max(36, round(size[1] * scale))


def model_config(config_name, opts=()):
    """The config ``load_model`` builds ``configs/<config_name>`` with."""
    return build_config(os.path.join(ROOT, "configs", config_name), list(opts))


def parse_timing_args(doc, argv=None, steps=True, flags=None):
    """The command line of a speed benchmark built on these helpers (benchmark_export.py,
    benchmark_lanes.py): ``--rounds``, ``--steps`` (with ``steps``), the ``flags`` ({option:
    help}, each true when given), ``--scale`` and the config overrides for every model; the
    description is ``doc``'s first paragraph."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed inference rounds")
    if steps:
        parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    for option, text in (flags or {}).items():
        parser.add_argument(option, action="store_true", help=text)
    parser.add_argument("--scale", type=float, default=1.0,
                        help="image sizes times this (< 1 only for a quick check)")
    parser.add_argument("opts", nargs=argparse.REMAINDER,
                        help="config overrides for every model (KEY VALUE ...)")
    return parser.parse_args(argv)
