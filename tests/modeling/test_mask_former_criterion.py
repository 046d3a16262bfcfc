"""MaskFormer's criterion: its losses, Hungarian matching and target resizing, on hand-made
predictions whose right answer is known."""
import pytest
import torch
from torch.nn import functional as F

from lv_adapter.modeling.segmentation import MaskFormerCriterion, resize_target_masks

BIG = 30.0


def criterion(deep_supervision=True, num_classes=3, loss_stride=4):
    """Losses at 1/4 of the 32x32 targets by default: the 8x8 prediction's own resolution."""
    return MaskFormerCriterion(
        "semantic", num_classes, weights={"class": 1.0, "mask": 20.0, "dice": 1.0},
        no_object_weight=0.1, deep_supervision=deep_supervision, loss_stride=loss_stride,
    )


# Two segments at 8x8 (the prediction resolution); targets come at 4x that (32x32).
SEGMENTS = torch.zeros(2, 8, 8, dtype=torch.bool)
SEGMENTS[0, :4] = True
SEGMENTS[1, 4:, 2:] = True
TARGETS = [{
    "labels": torch.tensor([2, 0]),
    "masks": SEGMENTS.repeat_interleave(4, 1).repeat_interleave(4, 2),
}]
# Query 1 predicts segment 0 (class 2) and query 3 segment 1 (class 0).
MATCHED_QUERIES = (1, 3)


def prediction(labels_and_masks, num_queries=4, num_classes=3):
    """Outputs with confident logits: query q -> (class, [8, 8] mask); other queries no object."""
    logits = torch.full((1, num_queries, num_classes + 1), -BIG)
    logits[0, :, num_classes] = BIG
    masks = torch.full((1, num_queries, 8, 8), -BIG)
    for q, (label, mask) in labels_and_masks.items():
        logits[0, q] = -BIG
        logits[0, q, label] = BIG
        masks[0, q] = torch.where(mask, BIG, -BIG)
    return {"pred_logits": logits, "pred_masks": masks}


def perfect_prediction():
    return prediction({
        q: (label, mask)
        for q, label, mask in zip(MATCHED_QUERIES, TARGETS[0]["labels"].tolist(), SEGMENTS)
    })


def test_perfect_prediction_has_near_zero_losses_and_a_wrong_one_does_not():
    losses = criterion()([perfect_prediction()], TARGETS)
    assert set(losses) == {"loss_semantic_class", "loss_semantic_mask", "loss_semantic_dice"}
    assert all(value.item() < 1e-4 for value in losses.values()), losses
    # Right masks with swapped classes, then right classes with shifted masks.
    swapped = prediction({1: (0, SEGMENTS[0]), 3: (2, SEGMENTS[1])})
    shifted = prediction({1: (2, SEGMENTS[0].roll(2, 0)), 3: (0, SEGMENTS[1].roll(2, 1))})
    assert criterion()([swapped], TARGETS)["loss_semantic_class"] > 1.0
    wrong_masks = criterion()([shifted], TARGETS)
    assert wrong_masks["loss_semantic_mask"] > 1.0 and wrong_masks["loss_semantic_dice"] > 0.3


def test_thin_segments_are_scored_at_input_resolution():
    # A 1-pixel-wide pole at 32x32 covers a quarter of its 4x4 cells: gone at stride 4.
    pole = torch.zeros(1, 32, 32, dtype=torch.bool)
    pole[0, :, 9] = True
    targets = [{"labels": torch.tensor([1]), "masks": pole}]
    misses_it = prediction({0: (1, torch.zeros(8, 8, dtype=torch.bool))})
    coarse = criterion(loss_stride=4)([misses_it], targets)
    fine = criterion(loss_stride=1)([misses_it], targets)
    assert coarse["loss_semantic_dice"].item() < 1e-4  # empty target, empty prediction
    assert fine["loss_semantic_dice"].item() > 0.9
    assert fine["loss_semantic_mask"].item() > 100 * coarse["loss_semantic_mask"].item()
    # The upsampled prediction carries the gradient back to the 8x8 logits.
    misses_it["pred_masks"].requires_grad_(True)
    criterion(loss_stride=1)([misses_it], targets)["loss_semantic_mask"].backward()
    assert misses_it["pred_masks"].grad[0, 0, :, 2].lt(0).all()  # raise the pole's column


def test_loss_stride_must_be_positive():
    with pytest.raises(ValueError, match="loss_stride"):
        criterion(loss_stride=0)


def test_matcher_assigns_each_segment_its_query():
    outputs = perfect_prediction()
    size = outputs["pred_masks"].shape[-2:]
    targets = [{"labels": TARGETS[0]["labels"], "masks": resize_target_masks(
        TARGETS[0]["masks"], size)}]
    ((queries, segments),) = criterion().match(outputs, targets)
    assert queries.tolist() == list(MATCHED_QUERIES) and segments.tolist() == [0, 1]


def test_class_loss_weighs_no_object_down():
    logits = torch.randn(1, 2, 4, generator=torch.Generator().manual_seed(0))
    matches = [(torch.tensor([0]), torch.tensor([0]))]
    targets = [{"labels": torch.tensor([1])}]
    # One process: the normalizer is the batch's weight sum, 1 matched + 0.1 no object.
    norms = criterion().normalizers({"pred_logits": logits}, targets, "cpu")
    assert norms["class_weight_sum"] == pytest.approx(1.1)
    loss = criterion().class_loss(logits, targets, matches, norms["class_weight_sum"])
    nll = -logits[0].log_softmax(-1)
    expected = (1.0 * nll[0, 1] + 0.1 * nll[1, 3]) / 1.1
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_empty_targets_give_finite_losses_that_push_to_no_object():
    outputs = prediction({0: (1, SEGMENTS[0])})
    outputs["pred_logits"].requires_grad_(True)
    outputs["pred_masks"].requires_grad_(True)
    empty = [{"labels": torch.zeros(0, dtype=torch.int64),
              "masks": torch.zeros(0, 32, 32, dtype=torch.bool)}]
    losses = criterion()([outputs], empty)
    assert losses["loss_semantic_mask"].item() == 0 and losses["loss_semantic_dice"].item() == 0
    assert losses["loss_semantic_class"].item() > 1.0  # query 0 claims an object
    sum(losses.values()).backward()
    assert torch.isfinite(outputs["pred_logits"].grad).all()
    # Gradient descent lowers query 0's class logit and raises its no-object logit.
    assert outputs["pred_logits"].grad[0, 0, 1] > 0 > outputs["pred_logits"].grad[0, 0, 3]


@pytest.mark.parametrize("deep_supervision, expected_suffixes", [
    (True, ["_0", "_1", ""]),
    (False, [""]),
])
def test_loss_keys_per_decoder_layer(deep_supervision, expected_suffixes):
    stages = [perfect_prediction() for _ in range(3)]
    losses = criterion(deep_supervision)(stages, TARGETS)
    expected = {f"loss_semantic_{term}{suffix}"
                for term in ("class", "mask", "dice") for suffix in expected_suffixes}
    assert set(losses) == expected


def test_target_masks_are_downsampled_by_majority():
    masks = torch.zeros(1, 8, 8, dtype=torch.bool)
    masks[0, :2, :4], masks[0, 2, 0] = True, True  # 9 of the 16 pixels of the top-left cell
    masks[0, 4, 4:], masks[0, 5, 4:7] = True, True  # 7 of 16 of the bottom-right cell
    assert resize_target_masks(masks, (2, 2)).tolist() == [[[1.0, 0.0], [0.0, 0.0]]]
    assert resize_target_masks(masks[:0], (2, 2)).shape == (0, 2, 2)


def test_matching_targets_keep_a_one_pixel_pole():
    # A 1-pixel-wide pole at 32x32 covers a quarter of each 4x4 cell: no majority anywhere,
    # and nearest sampling (columns 0, 4, 8, ...) misses column 9.
    pole = torch.zeros(1, 32, 32, dtype=torch.bool)
    pole[0, :, 9] = True
    assert resize_target_masks(pole, (8, 8)).sum() == 0
    assert F.interpolate(pole[None].float(), size=(8, 8), mode="nearest").sum() == 0
    kept = resize_target_masks(pole, (8, 8), mode="any")
    assert kept[0, :, 2].all() and kept.sum() == 8  # column 9 lies in cell column 2
    # Through the criterion: query 1 predicts the pole; query 0 a shorter wrong column, which an
    # empty matching target would prefer (fewer false positives). Same class for both.
    right, wrong = torch.zeros(8, 8, dtype=torch.bool), torch.zeros(8, 8, dtype=torch.bool)
    right[:, 2], wrong[:4, 6] = True, True
    outputs = prediction({0: (1, wrong), 1: (1, right)})
    crit = criterion(loss_stride=1)
    targets = [crit._prepare({"labels": torch.tensor([1]), "masks": pole}, (8, 8))]
    ((queries, _),) = crit.match(outputs, targets)
    assert queries.tolist() == [1]


def test_resize_mode_must_be_known():
    with pytest.raises(ValueError, match="mode"):
        resize_target_masks(torch.ones(1, 4, 4), (2, 2), mode="nearest")
