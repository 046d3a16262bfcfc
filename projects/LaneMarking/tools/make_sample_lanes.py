#!/usr/bin/env python
"""Write the sample BDD100K (tools/make_sample_bdd100k.py) with lane-marking masks.

    python projects/LaneMarking/tools/make_sample_lanes.py --out datasets/sample_lanes \\
        --num-images 60 --width 320 --height 180

writes ``<out>/bdd100k/...`` plus ``labels/lane/masks/{train,val}/<stem>.png`` for every 100k
image (the same scenes as make_sample_bdd100k.py's, byte for byte); point
$DETECTRON2_DATASETS at ``--out`` to train the lane task on it.
"""
import os
import sys

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(os.path.dirname(PROJECT))
# The project, the repository and its tools/ (not a package: a "tools" package may be installed)
sys.path[:0] = [PROJECT, REPO, os.path.join(REPO, "tools")]

import make_sample_bdd100k  # noqa: E402
from lv_lanes.sample import LaneSampleWriter  # noqa: E402


def main(argv=None):
    make_sample_bdd100k.main(argv, LaneSampleWriter, "make_sample_lanes")


if __name__ == "__main__":
    main()
