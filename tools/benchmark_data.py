#!/usr/bin/env python
"""Benchmark: MultiTaskDatasetMapper against detectron2's stock DatasetMapper.

Both map the same 1280x720 sample images with the same augmentation (resize the shortest edge
to ``--min-size``, default 720 = BDD100K's own size, and random flip). The stock mapper does
detection only; ours also decodes, validates and transforms the semantic and drivable masks.
Reported: seconds per image of each, and the ratio ours / stock, measured in the same run over
interleaved rounds.

    python tools/benchmark_data.py --num-images 60 --rounds 7 --min-size 720
"""
import argparse
import copy
import statistics
import tempfile
import time

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


def time_per_image(mapper, dicts):
    start = time.perf_counter()
    for d in dicts:
        assert mapper(d) is not None
    return (time.perf_counter() - start) / len(dicts)


def main(args):
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    cfg.INPUT.MIN_SIZE_TRAIN = (args.min_size,)
    cfg.INPUT.MAX_SIZE_TRAIN = 1333
    with tempfile.TemporaryDirectory() as root:
        write_sample_bdd100k(root, args.num_images, width=1280, height=720, seed=0)
        ours_dicts = fully_labeled_dicts(root)
        stock_dicts = detection_only(ours_dicts)
        mappers = {
            "stock DatasetMapper (detection only)": (DatasetMapper(cfg, True), stock_dicts),
            "MultiTaskDatasetMapper (det + 2 masks)": (
                MultiTaskDatasetMapper(cfg, True), ours_dicts
            ),
        }
        times = {name: [] for name in mappers}
        for _ in tqdm(range(args.rounds), desc="rounds"):
            for name, (mapper, dicts) in mappers.items():  # interleaved: same machine state
                times[name].append(time_per_image(mapper, dicts))
    n = len(ours_dicts)
    print(f"{n} fully labeled 1280x720 images, shortest edge -> {args.min_size}, "
          f"{args.rounds} rounds; median per image:")
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, sec in medians.items():
        print(f"  {name:42s} {sec * 1000:7.1f} ms")
    stock, ours = medians.values()
    print(f"  ratio ours / stock: {ours / stock:.2f} (target <= 1.6)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-images", type=int, default=40, help="scenes to generate")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the images")
    parser.add_argument("--min-size", type=int, default=720,
                        help="shortest edge after resizing (720 keeps BDD100K's size)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
