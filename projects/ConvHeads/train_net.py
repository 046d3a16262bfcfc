#!/usr/bin/env python
"""lv_adapter's train_net.py with the convolutional heads registered.

    python projects/ConvHeads/train_net.py \
        --config-file projects/ConvHeads/configs/sample/conv_seg_R18.yaml

Every option of the repository's train_net.py works the same (``--eval-only``, ``--resume``,
``--num-gpus``, config overrides).
"""
from lv_adapter.projects import project_train_net

train_net = project_train_net(__file__, "conv_heads")

if __name__ == "__main__":
    train_net.invoke_main()
