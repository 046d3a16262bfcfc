"""BDD100K lane marking as a fourth task of lv_adapter's multi-task model (issue 17, part 2).

So far: the official byte encoding of the lane masks (:mod:`.encoding`) and the official lane
benchmark's F-score (:mod:`.metric`, ``tools/evaluate_lane.py``). The task registration, its
datasets, head, evaluator and drawing follow.
"""
