#!/usr/bin/env python
"""Draw the ground truth of a registered dataset: boxes over the drivable area (left) and the
semantic overlay (right), one PNG per image, with detectron2's Visualizer.

    DETECTRON2_DATASETS=datasets/sample python tools/visualize_data.py \
        --dataset bdd100k_multitask_train --num 8 --out output/gt
"""
import argparse
import os
import sys

import cv2
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.utils.logger import setup_logger
from tqdm import tqdm

import lv_adapter  # noqa: F401  (registers the datasets)
from lv_adapter.data.errors import BadSampleError
from lv_adapter.data.readers import read_image
from lv_adapter.projects import add_project_argument, import_projects
from lv_adapter.utils.io import write_image
from lv_adapter.utils.visualizer import draw_multitask, ground_truth_of


def draw_ground_truth(dataset_name, num, out_dir, scale=1.0, skipped=None):
    """Draw the first ``num`` images of ``dataset_name`` into ``out_dir``, ``scale`` times their
    size; return the paths.

    An image or mask that cannot be read is named with its problem on stderr and left out; its
    :class:`BadSampleError` is appended to ``skipped`` when a list is given.
    """
    dicts = DatasetCatalog.get(dataset_name)[:num]
    metadata = MetadataCatalog.get(dataset_name)
    paths = []
    for d in tqdm(dicts, desc=f"drawing {dataset_name}"):
        try:
            image = read_image(d["file_name"], "RGB")
            labels = ground_truth_of(d)
        except BadSampleError as e:
            tqdm.write(f"skipping an unreadable file: {e}", file=sys.stderr)
            if skipped is not None:
                skipped.append(e)
            continue
        picture = draw_multitask(image, metadata, drawables=labels, scale=scale)
        path = os.path.join(out_dir, f"{d['image_id']}.png")
        write_image(path, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        paths.append(path)
    return paths


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="bdd100k_multitask_train", help="registered name")
    parser.add_argument("--num", type=int, default=8, help="images to draw")
    parser.add_argument("--out", default="output/gt", help="folder for the PNG files")
    parser.add_argument("--scale", type=float, default=1.0, help="drawing size / image size")
    add_project_argument(parser)
    args = parser.parse_args(argv)
    if args.num < 1:  # a slice [:-2] would draw all but two
        parser.error(f"--num must be >= 1, got {args.num}")
    import_projects(args.project)
    return args


def main(args):
    """Draw; return the exit status: 1 when a file could not be read (named on stderr)."""
    setup_logger(name="lv_adapter")  # loading counts and warnings
    skipped = []
    written = draw_ground_truth(args.dataset, args.num, args.out, args.scale, skipped)
    print(f"wrote {len(written)} drawings to {args.out}")
    if skipped:
        print(f"skipped {len(skipped)} images whose files cannot be read (named above)")
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main(parse_args()))
