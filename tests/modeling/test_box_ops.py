"""Box conversions and generalized IoU."""
import pytest
import torch
from detectron2.structures import Boxes, pairwise_iou

from lv_adapter.modeling.box_ops import (
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
    pairwise_generalized_box_iou,
)


def random_boxes(n, seed):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 50
    return torch.cat([xy, xy + 1 + torch.rand(n, 2, generator=g) * 30], dim=1)


def test_conversions_known_values_and_round_trip():
    xyxy = torch.tensor([[10.0, 20.0, 30.0, 60.0]])
    assert box_xyxy_to_cxcywh(xyxy).tolist() == [[20.0, 40.0, 20.0, 40.0]]
    assert box_cxcywh_to_xyxy(torch.tensor([[20.0, 40.0, 20.0, 40.0]])).tolist() == xyxy.tolist()
    boxes = random_boxes(7, seed=0).view(7, 1, 4)  # any leading shape
    assert torch.allclose(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(boxes)), boxes, atol=1e-5)


def test_identical_boxes_have_giou_one():
    boxes = random_boxes(6, seed=1)
    assert torch.allclose(generalized_box_iou(boxes, boxes), torch.ones(6))
    assert torch.allclose(pairwise_generalized_box_iou(boxes, boxes).diagonal(), torch.ones(6))


def test_far_disjoint_boxes_approach_minus_one():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1000.0, 1000.0, 1001.0, 1001.0]])
    giou = pairwise_generalized_box_iou(a, b)
    assert giou.shape == (1, 1)
    # IoU 0, enclosing 1001^2 of which only 2 covered: -(1001^2 - 2) / 1001^2.
    assert giou.item() == pytest.approx(-(1001**2 - 2) / 1001**2, abs=1e-6)
    assert giou.item() < -0.999


@pytest.mark.parametrize(
    "a, b, expected",
    [
        # inter 1, union 7, enclosing 9: 1/7 - 2/9
        ([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0], 1 / 7 - 2 / 9),
        # side by side, half overlapping: inter 4, union 12 = enclosing
        ([0.0, 0.0, 4.0, 2.0], [2.0, 0.0, 6.0, 2.0], 1 / 3),
        # touching edges: IoU 0 and the enclosing box is exactly the union
        ([0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 1.0], 0.0),
        # gap of 2: enclosing 4x1, union 2
        ([0.0, 0.0, 1.0, 1.0], [3.0, 0.0, 4.0, 1.0], -0.5),
    ],
)
def test_hand_computed_giou(a, b, expected):
    value = generalized_box_iou(torch.tensor(a), torch.tensor(b)).item()
    assert value == pytest.approx(expected, abs=1e-6)
    assert generalized_box_iou(torch.tensor(b), torch.tensor(a)).item() == pytest.approx(value)


def test_pairwise_matches_elementwise_and_is_within_range():
    a, b = random_boxes(5, seed=2), random_boxes(3, seed=3)
    pairwise = pairwise_generalized_box_iou(a, b)
    assert pairwise.shape == (5, 3)
    for i in range(5):
        for j in range(3):
            assert pairwise[i, j].item() == pytest.approx(generalized_box_iou(a[i], b[j]).item())
    assert (pairwise <= 1).all() and (pairwise >= -1).all()
    # GIoU <= IoU, computed independently by detectron2.
    assert (pairwise <= pairwise_iou(Boxes(a), Boxes(b)) + 1e-6).all()


def test_nested_boxes_giou_equals_detectron2_iou():
    # When one box contains the other, the enclosing box is the union: GIoU = IoU.
    outer = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    inner = torch.tensor([[2.0, 3.0, 5.0, 9.0], [0.0, 0.0, 10.0, 5.0]])
    expected = pairwise_iou(Boxes(outer), Boxes(inner))
    assert torch.allclose(pairwise_generalized_box_iou(outer, inner), expected)
    assert expected[0, 1].item() == pytest.approx(0.5)


def test_degenerate_boxes_give_no_nan_values_or_gradients():
    a = torch.tensor(
        [[5.0, 5.0, 5.0, 5.0], [0.0, 0.0, 0.0, 10.0], [1.0, 1.0, 3.0, 3.0]], requires_grad=True
    )
    b = torch.tensor([[5.0, 5.0, 5.0, 5.0], [2.0, 2.0, 2.0, 2.0]])
    giou = pairwise_generalized_box_iou(a, b)
    assert torch.isfinite(giou).all()
    assert giou[0, 0].item() == 0.0  # identical points: nothing overlaps, nothing encloses
    giou.sum().backward()
    assert torch.isfinite(a.grad).all()


def test_empty_inputs():
    assert pairwise_generalized_box_iou(torch.zeros(0, 4), random_boxes(3, seed=4)).shape == (0, 3)
    assert pairwise_generalized_box_iou(random_boxes(2, seed=5), torch.zeros(0, 4)).shape == (2, 0)
