"""Default keys of the task heads: Sparse R-CNN (MODEL.SPARSE_RCNN, detection's head node) and
one MaskFormer node per mask task (MODEL.SEMANTIC_HEAD, MODEL.DRIVABLE_HEAD: their head nodes)."""
from detectron2.config import CfgNode as CN

from lv_adapter.tasks import DETECTION, get_task, mask_task_names


def add_sparse_rcnn_config(cfg):
    # Detection head (Sparse R-CNN, Sun et al. 2021); defaults are the paper's R50-FPN setting.
    cfg.MODEL.SPARSE_RCNN = CN()
    cfg.MODEL.SPARSE_RCNN.IN_FEATURES = ["p2", "p3", "p4", "p5"]
    cfg.MODEL.SPARSE_RCNN.NUM_CLASSES = len(get_task(DETECTION).classes)
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


def add_mask_former_config(cfg):
    # MaskFormer (Cheng et al. 2021): a node per mask task, under its head node; R50 defaults.
    for task in map(get_task, mask_task_names()):
        cfg.MODEL[task.head_node] = CN({
            # Fused by the pixel decoder into the stride-4 mask features.
            "IN_FEATURES": ["p2", "p3", "p4", "p5"],
            # The queries attend to this map (the one the LV-Adapter updates).
            "TRANSFORMER_IN_FEATURE": "p5",
            "NUM_CLASSES": len(task.classes),
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
