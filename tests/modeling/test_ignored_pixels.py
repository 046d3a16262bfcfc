"""Ignored pixels (255, padding) in the MaskFormer heads' mask losses and matching: left out by
default, negatives of every segment with IGNORED_PIXELS_AS_NEGATIVES (official MaskFormer)."""
import json
import os

import pytest
import torch

import train_net
from conftest import REPO
from lv_adapter.modeling.segmentation import MaskFormerCriterion
from lv_adapter.tasks import IGNORE_LABEL, SEMANTIC, get_task

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
NUM_CLASSES, NUM_QUERIES = 3, 5


def semantic_label():
    """[32, 32]: the left half ignored (255), the right half class 1 above class 2."""
    seg = torch.full((32, 32), IGNORE_LABEL, dtype=torch.long)
    seg[:16, 16:] = 1
    seg[16:, 16:] = 2
    return seg


def targets_of(seg):
    """The meta-architecture's targets for one image of ``seg`` (no padding)."""
    images = type("Images", (), {"tensor": torch.zeros(1, 3, *seg.shape)})()
    return get_task(SEMANTIC).targets([{"sem_seg": seg}], images)


def outputs(seed, num_stages=2):
    """Random logits of ``num_stages`` decoder stages at stride 4 (8x8 for 32x32 targets)."""
    g = torch.Generator().manual_seed(seed)
    return [{"pred_logits": torch.randn(1, NUM_QUERIES, NUM_CLASSES + 1, generator=g),
             "pred_masks": 3 * torch.randn(1, NUM_QUERIES, 8, 8, generator=g)}
            for _ in range(num_stages)]


def changed_on_ignored_cells(stage_outputs):
    """The same outputs with other mask logits in the 8x8 cells 0-2 of each row: pixels 0-11,
    inside the ignored half; bilinear upsampling to 32x32 carries them to pixels <= 13 only."""
    changed = []
    for stage in stage_outputs:
        masks = stage["pred_masks"].clone()
        masks[..., :3] = -masks[..., :3] + 7.0
        changed.append({"pred_logits": stage["pred_logits"], "pred_masks": masks})
    return changed


def criterion(ignored_as_negatives, loss_stride=1):
    return MaskFormerCriterion(
        "semantic", NUM_CLASSES, weights={"class": 1.0, "mask": 20.0, "dice": 1.0},
        no_object_weight=0.1, loss_stride=loss_stride, ignored_as_negatives=ignored_as_negatives,
    )


def losses_and_matches(crit, stage_outputs, targets):
    losses = crit(stage_outputs, targets)
    prepared = [crit._prepare(t, stage_outputs[-1]["pred_masks"].shape[-2:]) for t in targets]
    matches = [crit.match(stage, prepared) for stage in stage_outputs]
    return losses, [[(p.tolist(), t.tolist()) for p, t in m] for m in matches]


def test_targets_mark_ignored_and_padding_pixels_invalid():
    seg = semantic_label()[:30]  # padded to 32 rows below
    images = type("Images", (), {"tensor": torch.zeros(1, 3, 32, 32)})()
    (target,) = get_task(SEMANTIC).targets([{"sem_seg": seg}], images)
    assert target["labels"].tolist() == [1, 2]
    expected = torch.zeros(32, 32, dtype=torch.bool)
    expected[:30, 16:] = True
    assert torch.equal(target["valid"], expected)
    assert not target["masks"][:, :, :16].any() and not target["masks"][:, 30:].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("loss_stride", [1, 4])
def test_logits_on_ignored_pixels_change_neither_loss_nor_matching(seed, loss_stride):
    crit, targets = criterion(False, loss_stride), targets_of(semantic_label())
    stage_outputs = outputs(seed)
    before, matches = losses_and_matches(crit, stage_outputs, targets)
    after, matches_after = losses_and_matches(crit, changed_on_ignored_cells(stage_outputs),
                                              targets)
    assert matches_after == matches
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key


def test_official_maskformer_scores_ignored_pixels_as_negatives():
    crit, targets = criterion(True), targets_of(semantic_label())
    stage_outputs = outputs(0)
    before = crit(stage_outputs, targets)
    after = crit(changed_on_ignored_cells(stage_outputs), targets)
    for key in ("loss_semantic_mask", "loss_semantic_dice"):
        assert not torch.isclose(before[key], after[key]), key


def test_without_ignored_pixels_both_settings_agree():
    seg = semantic_label()
    seg[:, :16] = 0  # every pixel labeled
    targets = targets_of(seg)
    stage_outputs = outputs(3)
    ours, official = criterion(False)(stage_outputs, targets), criterion(True)(stage_outputs,
                                                                               targets)
    for key in ours:
        assert torch.equal(ours[key], official[key]), key


def test_a_pixel_is_scored_where_most_of_its_loss_cell_is_valid():
    seg = semantic_label()
    seg[:, 14:16] = 0  # two labeled columns at the left border of the 4-pixel loss cells 12-15
    (target,) = targets_of(seg)
    prepared = criterion(False, loss_stride=4)._prepare(target, (8, 8))
    # matching cells: any valid pixel -> cell column 3 (pixels 12-15) counts
    assert prepared["valid"][:, 3:].all() and not prepared["valid"][:, :3].any()
    # loss cells: half of column 3's pixels are valid -> it counts (majority, ties included)
    assert prepared["loss_valid"][:, 3:].bool().all() and not prepared["loss_valid"][:, :3].any()


def final_losses(out):
    with open(out / "metrics.json") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if "loss_semantic_mask" in r][-1]


def test_train_net_switches_official_maskformer_on_per_head(sample_root, tmp_path):
    """The tiny scenes are 128x72, padded to 128x96: padding is ignored by default and a
    negative of every segment with the switch. Semantic images only, so that the iteration's
    batch has semantic labels whatever the seed draws."""
    runs = {}
    for official in (False, True):
        out = tmp_path / str(official)
        argv = ["--config-file", TINY, "MODEL.TASKS", "('semantic',)",
                "DATASETS.TRAIN", "('bdd100k_sem_seg_train',)", "SOLVER.MAX_ITER", "1",
                "DATASETS.TEST", "()", "MODEL.SEMANTIC_HEAD.IGNORED_PIXELS_AS_NEGATIVES",
                str(official), "OUTPUT_DIR", str(out)]
        train_net.main(train_net.default_argument_parser().parse_args(argv))
        runs[official] = final_losses(out)
    ours, official = runs[False], runs[True]
    assert ours["loss_semantic_mask"] > 0 and official["loss_semantic_mask"] > 0
    assert ours["loss_semantic_mask"] != pytest.approx(official["loss_semantic_mask"])
