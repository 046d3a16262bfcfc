"""MaskFormer's dice and sigmoid focal mask losses, per pair and pairwise."""
import math

import pytest
import torch

from lv_adapter.modeling.segmentation import (
    dice_loss,
    focal_mask_loss,
    pairwise_dice_cost,
    pairwise_focal_cost,
)

BIG = 30.0  # a logit whose sigmoid is 1 (or 0) to float precision


def confident_logits(masks):
    """Logits predicting ``masks`` with certainty."""
    return torch.where(masks.bool(), BIG, -BIG)


def test_dice_of_identical_masks_is_zero():
    masks = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0)) > 0.5
    assert dice_loss(confident_logits(masks), masks) == pytest.approx([0.0] * 3, abs=1e-6)


def test_dice_of_disjoint_masks_is_one_up_to_smoothing():
    target = torch.zeros(1, 4, 4, dtype=torch.bool)
    target[0, :2] = True  # 8 pixels
    prediction = confident_logits(~target)  # the other 8 pixels
    # 1 - (0 + 1) / (8 + 8 + 1)
    assert dice_loss(prediction, target).item() == pytest.approx(1 - 1 / 17, abs=1e-6)


def test_dice_known_value():
    # p = 0.5 on 4 pixels, 2 target pixels: 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert dice_loss(torch.zeros(1, 4), target).item() == pytest.approx(0.4)


def test_dice_of_empty_prediction_and_target_is_zero():
    empty = torch.zeros(1, 4, 4)
    assert dice_loss(confident_logits(empty), empty).item() == pytest.approx(0.0, abs=1e-6)


def test_focal_known_value():
    # Logit 0 (p = 0.5): focal = alpha_t * (1 - 0.5)^2 * ln 2 with alpha_t = 0.25 for a positive
    # and 0.75 for a negative pixel; the mean of one of each is 0.125 ln 2.
    loss = focal_mask_loss(torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(0.125 * math.log(2))


def test_focal_rewards_confident_correct_masks():
    masks = torch.rand(2, 6, 6, generator=torch.Generator().manual_seed(1)) > 0.5
    right = focal_mask_loss(confident_logits(masks), masks)
    wrong = focal_mask_loss(confident_logits(~masks), masks)
    assert (right < 1e-6).all() and (wrong > 1).all()


@pytest.mark.parametrize("pairwise, elementwise", [
    (pairwise_dice_cost, dice_loss),
    (pairwise_focal_cost, focal_mask_loss),
])
def test_pairwise_cost_equals_elementwise_loss(pairwise, elementwise):
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 7, 9, generator=g) * 3
    targets = torch.rand(4, 7, 9, generator=g) > 0.6
    cost = pairwise(logits, targets)
    assert cost.shape == (5, 4)
    for t in range(4):
        expected = elementwise(logits, targets[t].expand(5, -1, -1))
        torch.testing.assert_close(cost[:, t], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pairwise", [pairwise_dice_cost, pairwise_focal_cost])
def test_pairwise_cost_without_targets_is_empty(pairwise):
    assert pairwise(torch.randn(3, 4, 4), torch.zeros(0, 4, 4, dtype=torch.bool)).shape == (3, 0)
