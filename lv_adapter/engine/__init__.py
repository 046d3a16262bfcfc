from lv_adapter.engine.checkpoint import SafeCheckpointer, UnreadableCheckpointError
from lv_adapter.engine.fold_norms import fold_frozen_norms
from lv_adapter.engine.solver import build_lr_scheduler, build_optimizer
from lv_adapter.engine.stages import build_stage_hooks, stage_ddp_options

__all__ = [
    "SafeCheckpointer", "UnreadableCheckpointError", "build_lr_scheduler", "build_optimizer",
    "build_stage_hooks", "fold_frozen_norms", "stage_ddp_options",
]
