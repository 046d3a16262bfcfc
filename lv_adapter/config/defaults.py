"""lv_adapter's config keys and their defaults: :func:`add_lv_adapter_config` adds them all to a
detectron2 ``CfgNode``. The heads' and the adapter's keys are in their own modules."""
from detectron2.config import CfgNode as CN

from lv_adapter.config.adapter_defaults import add_adapter_config
from lv_adapter.config.head_defaults import add_mask_former_config, add_sparse_rcnn_config
from lv_adapter.tasks import BUILTIN_TASKS, get_task, task_names


def add_lv_adapter_config(cfg):
    """Add every lv_adapter key, with its default, to ``cfg`` (in place)."""
    _add_task_config(cfg)
    add_adapter_config(cfg)
    _add_data_config(cfg)
    _add_data_check_config(cfg)
    _add_task_strategy_config(cfg)
    _add_solver_config(cfg)
    add_sparse_rcnn_config(cfg)
    add_mask_former_config(cfg)
    _add_stage_and_backbone_config(cfg)
    _add_pseudo_labels_config(cfg)


def _add_task_config(cfg):
    # Which heads the model has: any non-empty subset of the registered tasks (lv_adapter.tasks;
    # a project's tasks once its package is imported). One task = that task's teacher.
    cfg.MODEL.TASKS = list(BUILTIN_TASKS)
    tasks = [get_task(name) for name in task_names()]
    # L = a_det * L_det + a_sem * L_sem + a_driv * L_driv; keys are the task names upper-cased.
    cfg.MODEL.TASK_WEIGHTS = CN({task.config_key: 1.0 for task in tasks})
    # The head of each task, by its name in lv_adapter.modeling.task_heads.TASK_HEAD_REGISTRY:
    # SparseRCNNHead for detection, MaskFormerHead for the mask tasks.
    cfg.MODEL.HEADS = CN({task.config_key: task.default_head for task in tasks})
    cfg.MODEL.ADAPTER = CN()
    cfg.MODEL.ADAPTER.NAME = "IdentityAdapter"
    # NHWC convolutions: faster with oneDNN on the CPU (and with cuDNN under AMP).
    cfg.MODEL.CHANNELS_LAST = True


def _add_data_config(cfg):
    # "raise": any unusable file or record stops with an error naming it.
    # "skip": training drops such samples with a warning and a running count in the log.
    cfg.DATASETS.ON_BAD_SAMPLE = "raise"
    # With DATALOADER.SAMPLER_TRAIN "TaskRepeatFactorSampler" (lv_adapter/data/samplers.py) an
    # image is drawn max(factor of its labeled tasks) times per epoch on average.
    cfg.DATALOADER.TASK_REPEAT_FACTORS = CN({get_task(t).config_key: 1.0 for t in task_names()})


def _add_task_strategy_config(cfg):
    # Co-training strategy of the paper's table 1 (lv_adapter/data/task_schedule.py):
    # "zeroing": mixed batches drawn by DATALOADER.SAMPLER_TRAIN, no loss for unlabeled tasks;
    # "uniform" / "weighted" / "round_robin": each iteration trains one task of MODEL.TASKS, drawn
    # uniformly / in proportion to its labeled images / in turn, on images labeled for it.
    cfg.DATALOADER.TASK_STRATEGY = "zeroing"
    # Seed of the per-task strategies' task sequence and image orders. Not SEED: with SEED -1
    # (random) a resumed run must still continue the same sequence.
    cfg.DATALOADER.TASK_SEED = 0


def _add_data_check_config(cfg):
    # Read and validate every image and mask of DATASETS.TRAIN before the first iteration (as
    # tools/check_dataset.py does), with DATALOADER.NUM_WORKERS processes per training process.
    # Bad files then stop the start ("raise") or are left out of training ("skip").
    cfg.DATASETS.CHECK_AT_START = False


def _add_solver_config(cfg):
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    # The ResNet learns at BASE_LR times this; the FPN, adapter and heads at BASE_LR.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    # Used by LR_SCHEDULER_NAME "WarmupPolyLR".
    cfg.SOLVER.POLY_LR_POWER = 0.9


def _add_stage_and_backbone_config(cfg):
    # Pretrain-adapt-finetune: the first ADAPT_ITERS iterations train with the ResNet
    # (backbone.bottom_up) frozen, weights and batch-norm statistics; then everything learns.
    # 0 = pretrain-finetune. Epochs -> iterations: epochs * images / SOLVER.IMS_PER_BATCH.
    cfg.SOLVER.ADAPT_ITERS = 0
    # After the adapt stage the ResNet joins at the schedule's current lr with fresh optimizer
    # state; W > 0 ramps its lr linearly over the first W finetune iterations (engine/stages.py).
    # The paper describes no such warm-up: 0.
    cfg.SOLVER.BACKBONE_WARMUP_ITERS = 0
    # CLIP's image trunk as the ResNet (MODEL.BACKBONE.NAME "build_clip_resnet_fpn_backbone").
    cfg.MODEL.CLIP = CN()
    # An open_clip model name with a ResNet image tower: RN50, RN101, RN50x4, ...
    cfg.MODEL.CLIP.NAME = "RN50-quickgelu"
    # open_clip pretrained tag ("openai" needs the model hub), a local checkpoint file of the
    # whole CLIP model, or "" for random weights.
    cfg.MODEL.CLIP.WEIGHTS = "openai"
    # "FrozenBN": the pre-trained batch norms stay fixed (affine, as MODEL.RESNETS.NORM
    # "FrozenBN"); "BN": they learn, statistics included.
    cfg.MODEL.CLIP.NORM = "FrozenBN"


def _add_pseudo_labels_config(cfg):
    cfg.PSEUDO_LABELS = CN()
    # Boxes with a score below this are not written. Sparse R-CNN's scores are per-class sigmoid
    # (focal-loss) scores, so 0.5 means "more likely this class than not"; lower thresholds add
    # mostly duplicates and background, which the student would learn as false positives.
    cfg.PSEUDO_LABELS.DET_SCORE_THRESH = 0.5
    # Pixels whose confidence (the winning class's share of the pixel's summed MaskFormer class
    # scores, see pseudo_labeler.py) is below this are written as 255 (ignored by the loss). 0.5
    # keeps the pixels where the winner outweighs all other classes together.
    cfg.PSEUDO_LABELS.SEM_SEG_THRESH = 0.5
    # The same for drivable masks. With 3 classes a share of 1/3 is chance level, so the same
    # majority rule is stricter in relative terms than for the 19 semantic classes; 0.5 still
    # keeps the large, easy background and road regions.
    cfg.PSEUDO_LABELS.DRIVABLE_THRESH = 0.5
    # A project's task: the same majority rule, under its registration's threshold_key.
    for task in map(get_task, task_names()):
        cfg.PSEUDO_LABELS.setdefault(task.threshold_key, 0.5)
    # Training on a set with pseudo labels (bdd100k_<setting>_train_pseudo) refuses a task whose
    # pseudo labels were never written while images lack it (it would train on ground truth
    # only, silently); tasks listed here may (e.g. ["detection"] for a run without that teacher).
    cfg.PSEUDO_LABELS.OPTIONAL_TASKS = []
