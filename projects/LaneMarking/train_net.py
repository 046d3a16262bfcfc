#!/usr/bin/env python
"""lv_adapter's train_net.py with the lane-marking task registered (``MODEL.TASKS`` may name
"lane"), its datasets ``bdd100k_lane_{train,val}`` and lanes in the multi-task sets, under
``DETECTRON2_DATASETS``.

    python projects/LaneMarking/train_net.py \
        --config-file projects/LaneMarking/configs/sample/teacher_lane_R18.yaml

Every option of the repository's train_net.py works the same (``--eval-only``, ``--resume``,
``--num-gpus``, config overrides).
"""
from lv_adapter.projects import project_train_net

train_net = project_train_net(__file__, "lv_lanes")

if __name__ == "__main__":
    train_net.invoke_main()
