#!/usr/bin/env python
"""Score a folder of predicted lane-marking PNGs against ground truth, as the official BDD100K
toolkit's lane benchmark does (``bdd100k.eval.lane``; no model needed).

    python projects/LaneMarking/tools/evaluate_lane.py --gt datasets/bdd100k/labels/lane/masks/val \
        --pred output/lane_val/bdd100k/lane --json output/lane_val/lane_metrics.json

Both folders hold ``<image stem>.png`` byte masks in BDD100K's lane encoding
(``lv_lanes.encoding``). Prints F1 at 1, 2 and 5 pixels for every direction, style and category
value, each sub-task's average and the overall average; ``--json`` writes the same as a JSON
object. An image without a prediction is scored as the toolkit scores it (an all-zero mask,
which decodes as crosswalk / solid / parallel everywhere), and said once; a PNG of another size
than its ground truth, or with values outside the encoding, is an error naming the file.
"""
import argparse
import os
import sys

import numpy as np
from tqdm import tqdm

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [PROJECT, os.path.dirname(os.path.dirname(PROJECT))]

from lv_adapter.data.errors import BadSampleError  # noqa: E402
from lv_adapter.utils.cli import check_writable_folder  # noqa: E402
from lv_adapter.utils.io import write_json  # noqa: E402
from lv_lanes.files import read_lane_mask  # noqa: E402
from lv_lanes.metric import LaneScores, format_table, image_scores  # noqa: E402


def pngs(folder, what):
    """``{stem: path}`` of the PNGs of ``folder``."""
    if not os.path.isdir(folder):
        raise BadSampleError(folder, f"{what} folder not found")
    return {name[:-4]: os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.lower().endswith(".png")}


def evaluate_folders(gt_folder, pred_folder, progress=True):
    """Scores of every ground-truth mask against its prediction: (results dict, number of
    images without a prediction)."""
    gt, pred = pngs(gt_folder, "ground-truth"), pngs(pred_folder, "prediction")
    if not gt:
        raise BadSampleError(gt_folder, "no PNG to score")
    scores, missing = LaneScores(), 0
    for stem, path in tqdm(gt.items(), desc="lane F-score", disable=not progress):
        truth = read_lane_mask(path)
        if stem in pred:
            guess = read_lane_mask(pred[stem], truth.shape, "its ground truth")
        else:  # the toolkit scores a missing prediction as an all-zero mask
            guess, missing = np.zeros_like(truth), missing + 1
        scores.add(image_scores(truth, guess))
    return scores.results(), missing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", required=True, help="folder of ground-truth lane PNGs")
    parser.add_argument("--pred", required=True, help="folder of predicted lane PNGs")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    try:
        if args.json:  # refused before the scoring, not after it
            check_writable_folder(os.path.dirname(os.path.abspath(args.json)), "--json")
        results, missing = evaluate_folders(args.gt, args.pred)
    except (OSError, ValueError) as e:  # BadSampleError is a ValueError
        parser.error(str(e))
    if missing:
        print(f"{missing} ground-truth images have no prediction in {args.pred}; scored as "
              "all-zero masks, as the official toolkit does")
    print(format_table(results))
    if args.json:
        write_json(args.json, results, indent=2)
        print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()
