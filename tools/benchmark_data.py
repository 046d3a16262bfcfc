#!/usr/bin/env python
"""Benchmark: MultiTaskDatasetMapper against detectron2's stock DatasetMapper.

Both map the same 1280x720 sample images with the same augmentation (resize the shortest edge
to ``--min-size``, default 720 = BDD100K's own size, and random flip). The stock mapper does
detection only; ours also decodes, validates and transforms the semantic and drivable masks.

Timing is made robust to a shared, noisy machine: one untimed warm-up pass; then rounds in which
the two mappers alternate image by image (the order flips every image, so neither always runs
first on a freshly read file); each round maps every image ``--passes`` times. The result is the
ratio ours / stock of each round: its median and spread (interquartile range and min-max). By
default PyTorch runs one thread, as in a DataLoader worker (``--torch-threads``).

    python tools/benchmark_data.py --num-images 60 --rounds 7 --min-size 720
"""
import argparse
import copy
import statistics
import tempfile
import time

import cv2
import torch
from detectron2.config import get_cfg
from detectron2.data import DatasetMapper
from tqdm import tqdm

from lv_adapter.config import add_lv_adapter_config
from lv_adapter.data.datasets.builtin import load_multitask
from lv_adapter.data.mapper import MultiTaskDatasetMapper
from lv_adapter.data.sample import write_sample_bdd100k


def fully_labeled_dicts(root):
    """Dataset dicts of the sample's train images that carry all three tasks' labels."""
    return [d for d in load_multitask(root, "train") if len(d["labeled_tasks"]) == 3]


def detection_only(dicts):
    """What the stock mapper gets: the same images and boxes, no mask files."""
    out = []
    for d in dicts:
        d = {k: v for k, v in d.items() if k not in ("sem_seg_file_name", "drivable_file_name")}
        out.append(copy.deepcopy(d))
    return out


def time_round(mappers, passes, first):
    """Seconds per image of each mapper over ``passes`` passes, alternating image by image.

    Args:
        mappers (list[tuple[callable, list[dict]]]): two (mapper, dicts) with dicts of one length.
        first (int): which mapper runs first on image 0; the order flips on every image.
    """
    totals = [0.0, 0.0]
    num = len(mappers[0][1])
    for step in range(passes * num):
        i = step % num
        for k in ((first + step) % 2, (first + step + 1) % 2):
            mapper, dicts = mappers[k]
            start = time.perf_counter()
            result = mapper(dicts[i])
            totals[k] += time.perf_counter() - start
            assert result is not None, dicts[i]["file_name"]
    return [total / (passes * num) for total in totals]


def spread(values):
    """(median, first quartile, third quartile, min, max) of ``values``."""
    if len(values) == 1:
        return (values[0],) * 5
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return median, q1, q3, min(values), max(values)


def main(args):
    torch.set_num_threads(args.torch_threads)
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    cfg.INPUT.MIN_SIZE_TRAIN = (args.min_size,)
    cfg.INPUT.MAX_SIZE_TRAIN = 1333
    with tempfile.TemporaryDirectory() as root:
        write_sample_bdd100k(root, args.num_images, width=1280, height=720, seed=0)
        ours_dicts = fully_labeled_dicts(root)
        mappers = [(DatasetMapper(cfg, True), detection_only(ours_dicts)),
                   (MultiTaskDatasetMapper(cfg, True), ours_dicts)]
        time_round(mappers, 1, 0)  # warm-up: file cache, lazy imports, allocator pools
        rounds = [time_round(mappers, args.passes, r % 2)
                  for r in tqdm(range(args.rounds), desc="rounds")]
    stock, ours = zip(*rounds)
    print(f"{len(ours_dicts)} fully labeled 1280x720 images, shortest edge -> {args.min_size}; "
          f"{args.rounds} rounds of {args.passes} passes after a warm-up pass; "
          f"{torch.get_num_threads()} PyTorch thread(s), {cv2.getNumThreads()} OpenCV thread(s)")
    for name, times in (("stock DatasetMapper (detection only)", stock),
                        ("MultiTaskDatasetMapper (det + 2 masks)", ours)):
        median, _, _, low, high = spread([t * 1000 for t in times])
        print(f"  {name:40s} median {median:6.1f} ms/image (rounds: {low:.1f}-{high:.1f})")
    median, q1, q3, low, high = spread([o / s for s, o in rounds])
    print(f"  ratio ours / stock per round: median {median:.2f}, IQR {q1:.2f}-{q3:.2f}, "
          f"min-max {low:.2f}-{high:.2f} (target <= 1.6)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=40, help="scenes to generate")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (one ratio each)")
    parser.add_argument("--passes", type=int, default=3, help="passes over the images per round")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="PyTorch threads (a DataLoader worker runs 1)")
    parser.add_argument("--min-size", type=int, default=720,
                        help="shortest edge after resizing (720 keeps BDD100K's size)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
