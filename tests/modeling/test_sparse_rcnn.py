"""Sparse R-CNN detection head: set loss values, forward contract, gradients, a short overfit."""
import math

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.structures import Boxes, Instances, pairwise_iou
from torch import nn

from lv_adapter.config import add_lv_adapter_config
from lv_adapter.modeling.detection import SparseRCNNCriterion, SparseRCNNHead

HIDDEN = 32
LEVELS = ["p2", "p3", "p4", "p5", "p6"]
STRIDES = [4, 8, 16, 32, 64]


# ---------------------------------------------------------------------------------------------
# Criterion on hand-built predictions


def make_target(labels, boxes, width=100.0, height=100.0):
    return {
        "labels": torch.tensor(labels, dtype=torch.int64),
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        "image_scale": torch.tensor([width, height, width, height]),
    }


def make_outputs(logits, boxes):
    """One image: logits [Q, K], boxes [Q, 4] -> a stage's outputs with batch 1."""
    return {
        "pred_logits": torch.tensor(logits, dtype=torch.float32)[None].requires_grad_(),
        "pred_boxes": torch.tensor(boxes, dtype=torch.float32)[None].requires_grad_(),
    }


def test_exact_confident_prediction_is_matched_and_costs_nothing():
    criterion = SparseRCNNCriterion()
    target = make_target([1], [[10.0, 20.0, 50.0, 60.0]])
    outputs = make_outputs(
        [[-12.0, -12.0], [-12.0, 12.0], [12.0, -12.0]],
        [[60.0, 60.0, 90.0, 90.0], [10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 30.0, 40.0]],
    )
    ((pred_idx, target_idx),) = criterion.match(outputs, [target])
    assert pred_idx.tolist() == [1] and target_idx.tolist() == [0]
    losses = criterion([outputs], [target])
    assert losses["loss_detection_bbox"].item() == pytest.approx(0.0, abs=1e-6)
    assert losses["loss_detection_giou"].item() == pytest.approx(0.0, abs=1e-6)
    # Prediction 2 is confident about class 0 but unmatched: it alone pays the class loss.
    assert losses["loss_detection_class"].item() > 1.0


def test_class_cost_decides_between_equal_boxes():
    criterion = SparseRCNNCriterion()
    target = make_target([0], [[10.0, 10.0, 30.0, 30.0]])
    box = [10.0, 10.0, 30.0, 30.0]
    outputs = make_outputs([[-3.0, 3.0], [3.0, -3.0]], [box, box])
    ((pred_idx, _),) = criterion.match(outputs, [target])
    assert pred_idx.tolist() == [1]


def test_known_l1_giou_and_focal_values():
    criterion = SparseRCNNCriterion(class_weight=2.0, l1_weight=5.0, giou_weight=2.0)
    target = make_target([0], [[10.0, 10.0, 30.0, 30.0]], width=100.0, height=50.0)
    outputs = make_outputs([[0.0, 0.0]], [[14.0, 10.0, 34.0, 30.0]])  # 4 px to the right
    losses = criterion([outputs], [target])
    # L1 on (x0, x1) normalized by the width: 2 * 4 / 100.
    assert losses["loss_detection_bbox"].item() == pytest.approx(5.0 * 0.08, rel=1e-5)
    # inter 16x20 = 320, union 480 = enclosing: GIoU 2/3.
    assert losses["loss_detection_giou"].item() == pytest.approx(2.0 * (1 - 2 / 3), rel=1e-5)
    # p = 0.5 everywhere: positive 0.25 * 0.5^2 * log 2, negative 0.75 * 0.5^2 * log 2.
    focal = (0.25 + 0.75) * 0.25 * math.log(2)
    assert losses["loss_detection_class"].item() == pytest.approx(2.0 * focal, rel=1e-5)


def test_losses_are_normalized_by_the_number_of_targets():
    criterion = SparseRCNNCriterion()
    target = make_target([0], [[10.0, 10.0, 30.0, 30.0]])
    outputs = make_outputs([[0.0, 0.0], [0.0, 0.0]], [[14.0, 10.0, 34.0, 30.0]] * 2)
    single = criterion([outputs], [target])
    doubled = criterion([outputs], [make_target([0, 0], [[10.0, 10.0, 30.0, 30.0]] * 2)])
    # Two identical targets, two identical predictions: same per-target box losses.
    assert doubled["loss_detection_bbox"].item() == pytest.approx(
        single["loss_detection_bbox"].item(), rel=1e-5
    )


def test_empty_targets_only_push_scores_down():
    criterion = SparseRCNNCriterion()
    outputs = make_outputs([[0.5, -1.0], [2.0, 0.0]], [[0.0, 0.0, 10.0, 10.0], [5, 5, 5, 5]])
    losses = criterion([outputs], [make_target([], [])])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_detection_bbox"].item() == 0.0
    assert losses["loss_detection_giou"].item() == 0.0
    assert losses["loss_detection_class"].item() > 0.0
    sum(losses.values()).backward()
    # A gradient step lowers every logit.
    assert (outputs["pred_logits"].grad > 0).all()


def test_loss_keys_with_and_without_deep_supervision():
    target = make_target([0], [[10.0, 10.0, 30.0, 30.0]])
    stages = [make_outputs([[0.0, 0.0]], [[12.0, 10.0, 30.0, 30.0]]) for _ in range(3)]
    terms = ["class", "bbox", "giou"]
    deep = SparseRCNNCriterion(deep_supervision=True)(stages, [target])
    expected = {f"loss_detection_{t}{s}" for t in terms for s in ["", "_0", "_1"]}
    assert set(deep) == expected
    last = SparseRCNNCriterion(deep_supervision=False)(stages, [target])
    assert set(last) == {f"loss_detection_{t}" for t in terms}


# ---------------------------------------------------------------------------------------------
# The head


def tiny_cfg(**overrides):
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    c = cfg.MODEL.SPARSE_RCNN
    c.HIDDEN_DIM, c.NUM_PROPOSALS, c.NUM_STAGES, c.NHEADS = HIDDEN, 8, 2, 4
    c.DIM_DYNAMIC, c.DIM_FEEDFORWARD, c.TEST_TOPK = 8, 64, 20
    for key, value in overrides.items():
        setattr(c, key, value)
    return cfg


def fpn_shapes(channels=HIDDEN):
    return {name: ShapeSpec(channels=channels, stride=s) for name, s in zip(LEVELS, STRIDES)}


def random_features(batch, height, width, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        name: torch.randn(batch, HIDDEN, height // s, width // s, generator=g).requires_grad_()
        for name, s in zip(LEVELS, STRIDES)
    }


def detection_targets():
    """Image 0 holds two objects, image 1 none."""
    boxes = torch.tensor([[5.0, 8.0, 40.0, 50.0], [50.0, 10.0, 90.0, 30.0]])
    return [
        {"labels": torch.tensor([3, 7]), "boxes": boxes},
        {"labels": torch.zeros(0, dtype=torch.int64), "boxes": torch.zeros(0, 4)},
    ]


def test_config_defaults():
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    c = cfg.MODEL.SPARSE_RCNN
    assert c.IN_FEATURES == ["p2", "p3", "p4", "p5"] and c.NUM_CLASSES == 10
    assert (c.NUM_PROPOSALS, c.NUM_STAGES, c.HIDDEN_DIM, c.TEST_TOPK) == (100, 6, 256, 100)
    assert (c.CLASS_WEIGHT, c.L1_WEIGHT, c.GIOU_WEIGHT) == (2.0, 5.0, 2.0)


def test_training_forward_gives_weighted_stage_losses_and_gradients():
    torch.manual_seed(0)
    head = SparseRCNNHead(tiny_cfg(), fpn_shapes())
    features = random_features(2, 64, 96)
    results, losses = head(features, [(64, 96), (60, 80)], detection_targets())
    assert results is None
    terms = ["class", "bbox", "giou"]
    assert set(losses) == {f"loss_detection_{t}{s}" for t in terms for s in ["", "_0"]}
    assert sorted(head.loss_keys()) == sorted(losses)
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert head.proposal_boxes.weight.grad.abs().sum() > 0
    assert head.proposal_features.weight.grad.abs().sum() > 0
    # Boxes this small are all pooled from p2; p6 is not an input feature.
    assert features["p2"].grad.abs().sum() > 0
    assert features["p6"].grad is None


def test_boxes_are_detached_between_stages():
    # Without deep supervision only the last stage is scored; its input boxes are detached, so
    # the learned proposal boxes get no gradient (RoIAlign gives none to box coordinates).
    torch.manual_seed(0)
    head = SparseRCNNHead(tiny_cfg(DEEP_SUPERVISION=False), fpn_shapes())
    _, losses = head(random_features(2, 64, 96), [(64, 96), (64, 96)], detection_targets())
    sum(losses.values()).backward()
    grad = head.proposal_boxes.weight.grad
    assert grad is None or grad.abs().sum() == 0
    assert head.proposal_features.weight.grad.abs().sum() > 0


def test_all_images_without_targets():
    torch.manual_seed(0)
    head = SparseRCNNHead(tiny_cfg(), fpn_shapes())
    empty = detection_targets()[1]
    _, losses = head(random_features(2, 64, 96), [(64, 96), (64, 96)], [empty, empty])
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_detection_bbox"].item() == 0.0


def test_inference_returns_topk_instances_inside_the_image():
    torch.manual_seed(0)
    head = SparseRCNNHead(tiny_cfg(), fpn_shapes()).eval()
    sizes = [(64, 96), (50, 70)]
    results, losses = head(random_features(2, 64, 96), sizes)
    assert losses == {} and len(results) == 2
    for result, (h, w) in zip(results, sizes):
        assert isinstance(result, Instances) and result.image_size == (h, w)
        assert len(result) == 20  # test_topk of 8 proposals x 10 classes
        assert set(result.get_fields()) == {"pred_boxes", "scores", "pred_classes"}
        boxes = result.pred_boxes.tensor
        assert (boxes[:, 0::2] >= 0).all() and (boxes[:, 0::2] <= w).all()
        assert (boxes[:, 1::2] >= 0).all() and (boxes[:, 1::2] <= h).all()
        assert (result.scores[:-1] >= result.scores[1:]).all()
        assert result.pred_classes.min() >= 0 and result.pred_classes.max() < 10


def test_topk_larger_than_predictions_keeps_all():
    head = SparseRCNNHead(tiny_cfg(TEST_TOPK=1000), fpn_shapes()).eval()
    results, _ = head(random_features(1, 64, 96), [(64, 96)])
    assert len(results[0]) == 8 * 10


def test_hidden_dim_must_match_fpn_channels():
    with pytest.raises(ValueError, match="hidden dim"):
        SparseRCNNHead(tiny_cfg(), fpn_shapes(channels=HIDDEN * 2))


# ---------------------------------------------------------------------------------------------
# Overfit one synthetic batch


class TinyFPN(nn.Module):
    """Image [B, 3, H, W] -> p2..p5 (strides 4..32) with HIDDEN channels."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, HIDDEN, 3, 2, 1), nn.ReLU(), nn.Conv2d(HIDDEN, HIDDEN, 3, 2, 1)
        )
        self.downs = nn.ModuleList(nn.Conv2d(HIDDEN, HIDDEN, 3, 2, 1) for _ in range(3))

    def forward(self, images):
        x = self.stem(images)
        features = {"p2": x}
        for i, down in enumerate(self.downs):
            x = down(torch.relu(x))
            features[f"p{i + 3}"] = x
        return features


def synthetic_batch():
    """Two 64x64 images with colored rectangles on gray, and their targets."""
    objects = [
        [(2, (1.0, 0.1, 0.1), (8, 12, 40, 44))],
        [(5, (0.1, 1.0, 0.1), (30, 6, 58, 30)), (1, (0.1, 0.1, 1.0), (6, 36, 30, 60))],
    ]
    images = torch.full((2, 3, 64, 64), 0.5)
    targets = []
    for image, image_objects in zip(images, objects):
        for _, color, (x0, y0, x1, y1) in image_objects:
            image[:, y0:y1, x0:x1] = torch.tensor(color)[:, None, None]
        targets.append(
            {
                "labels": torch.tensor([label for label, _, _ in image_objects]),
                "boxes": torch.tensor([box for _, _, box in image_objects], dtype=torch.float32),
            }
        )
    return images, targets


@pytest.mark.measurement
def test_overfits_one_batch():
    torch.manual_seed(0)
    images, targets = synthetic_batch()
    sizes = [(64, 64), (64, 64)]
    backbone = TinyFPN()
    head = SparseRCNNHead(tiny_cfg(IN_FEATURES=["p2", "p3", "p4", "p5"]), fpn_shapes())
    params = list(backbone.parameters()) + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    history = []
    for _ in range(120):
        _, losses = head(backbone(images), sizes, targets)
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert sum(history[-5:]) / 5 < 0.25 * history[0]
    head.eval()
    with torch.no_grad():
        results, _ = head(backbone(images), sizes)
    for result, target in zip(results, targets):
        best = result[0]  # the top-scoring detection
        iou = pairwise_iou(best.pred_boxes, Boxes(target["boxes"]))[0]
        assert iou.max() > 0.6
        assert best.pred_classes.item() == target["labels"][iou.argmax()].item()
