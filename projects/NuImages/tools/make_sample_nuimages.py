#!/usr/bin/env python
"""Write a small nuImages-format sample set (drawn road scenes) under ``<out>/nuimages``.

    python projects/NuImages/tools/make_sample_nuimages.py --out datasets/sample --num-images 200
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lv_nuimages.sample import write_sample_nuimages  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="datasets root; nuimages/ is written in it")
    parser.add_argument("--num-images", type=int, default=200)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-fraction", type=float, default=0.25)
    args = parser.parse_args(argv)
    counts = write_sample_nuimages(args.out, args.num_images, args.width, args.height, args.seed,
                                   args.val_fraction)
    print(", ".join(f"{version}: {n} key frames" for version, n in counts.items()),
          f"under {os.path.join(args.out, 'nuimages')}")


if __name__ == "__main__":
    main()
