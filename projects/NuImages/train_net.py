#!/usr/bin/env python
"""lv_adapter's train_net.py with the nuImages datasets registered (``nuimages_{train,val,mini}``
under ``DETECTRON2_DATASETS``).

    python projects/NuImages/train_net.py \
        --config-file projects/NuImages/configs/sample/multitask_R18.yaml

Every option of the repository's train_net.py works the same (``--eval-only``, ``--resume``,
``--num-gpus``, config overrides).
"""
from lv_adapter.projects import project_train_net

train_net = project_train_net(__file__, "lv_nuimages")

if __name__ == "__main__":
    train_net.invoke_main()
