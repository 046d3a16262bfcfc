#!/usr/bin/env python
"""lv_adapter's train_net.py with the convolutional heads registered.

    python projects/ConvHeads/train_net.py \
        --config-file projects/ConvHeads/configs/sample/conv_seg_R18.yaml

Every option of the repository's train_net.py works the same (``--eval-only``, ``--resume``,
``--num-gpus``, config overrides).
"""
import os
import sys

PROJECT = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(PROJECT))
# The repository's root first: "train_net" below must be its train_net.py, not this file.
sys.path[:0] = [ROOT, PROJECT]

import conv_heads  # noqa: E402,F401  (registers the heads; also in spawned worker processes)
import train_net  # noqa: E402  (ROOT/train_net.py)

if __name__ == "__main__":
    train_net.invoke_main()
