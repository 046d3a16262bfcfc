from lv_adapter.engine.checkpoint import SafeCheckpointer, UnreadableCheckpointError
from lv_adapter.engine.fold_norms import fold_frozen_norms
from lv_adapter.engine.solver import build_lr_scheduler, build_optimizer

__all__ = [
    "SafeCheckpointer",
    "UnreadableCheckpointError",
    "build_lr_scheduler",
    "build_optimizer",
    "fold_frozen_norms",
]
