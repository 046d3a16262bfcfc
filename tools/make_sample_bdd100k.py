#!/usr/bin/env python
"""Write a small, procedurally drawn dataset in the real BDD100K layout.

    python tools/make_sample_bdd100k.py --out datasets --num-images 60 --width 1280 \\
        --height 720 --seed 0

writes ``datasets/bdd100k/...`` (see lv_adapter.data.sample); point $DETECTRON2_DATASETS at
``--out`` to train or evaluate on it.
"""
import argparse
import sys

from tqdm import tqdm

from lv_adapter.data.sample import SampleWriter, format_summary


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="datasets root; bdd100k/ is written in it")
    parser.add_argument("--num-images", type=int, default=60, help="scenes to draw (>= 12)")
    parser.add_argument("--width", type=int, default=1280, help="image width (>= 64)")
    parser.add_argument("--height", type=int, default=720, help="image height (>= 36)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    return parser.parse_args(argv)


def main(argv=None, writer_class=SampleWriter, tool="make_sample_bdd100k"):
    """Draw and write the sample; ``writer_class``: a SampleWriter (a project's subclass writes
    its task's labels too, e.g. projects/LaneMarking/tools/make_sample_lanes.py)."""
    args = parse_args(argv)
    try:
        writer = writer_class(args.out, args.num_images, args.width, args.height, args.seed)
    except (ValueError, FileExistsError) as error:
        sys.exit(f"{tool}: {error}")
    for index in tqdm(range(len(writer)), desc="drawing scenes", unit="scene"):
        writer.write_scene(index)
    print(format_summary(writer.finish()))


if __name__ == "__main__":
    main()
