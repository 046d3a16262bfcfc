#!/usr/bin/env python
"""Write the semantic masks of nuImages key frames from the tables' surface and object masks.

    python projects/NuImages/tools/prepare_semantic_masks.py --root datasets \
        --version v1.0-train v1.0-val

The PNGs go to ``<root>/nuimages/semantic_masks/<version>/<sample_data token>.png`` (class ids of
lv_nuimages.categories.SEM_CLASSES, 255 = ignore), each written atomically; existing ones are
kept unless --overwrite, so an interrupted run continues where it stopped.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lv_nuimages.masks import write_semantic_masks  # noqa: E402
from lv_nuimages.nuimages import frames  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the datasets root that holds nuimages/")
    parser.add_argument("--version", nargs="+", default=["v1.0-train", "v1.0-val"])
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    for version in args.version:
        written = write_semantic_masks(frames(args.root, version), overwrite=args.overwrite)
        print(f"{version}: wrote {written} semantic masks")


if __name__ == "__main__":
    main()
