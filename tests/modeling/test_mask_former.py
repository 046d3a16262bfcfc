"""The MaskFormer head: criterion, inference, forward passes and a short overfit run."""
import os

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from torch import nn
from torch.nn import functional as F

from lv_adapter.config import add_lv_adapter_config
from lv_adapter.data.datasets.categories import DRIVABLE, SEMANTIC
from lv_adapter.modeling.segmentation import (
    CONFIG_NODES,
    PIXEL_DECODERS,
    LightPixelDecoder,
    MaskFormerCriterion,
    MaskFormerHead,
    MaskFormerPixelDecoder,
    resize_target_masks,
    semantic_inference,
)

BIG = 30.0
FPN_CHANNELS = 16  # differs from the hidden size, so the memory projection is exercised
STRIDES = {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}


def tiny_cfg():
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    for node in CONFIG_NODES.values():
        cfg.MODEL[node].merge_from_list([
            "NUM_QUERIES", 6, "HIDDEN_DIM", 32, "NHEADS", 4, "DEC_LAYERS", 2,
            "DIM_FEEDFORWARD", 64, "DROPOUT", 0.0, "MASK_DIM", 32, "CONVS_DIM", 32,
            "PIXEL_DECODER", "light",  # the CPU configs' decoder; both are tested below
        ])
    return cfg


def build_head(task, cfg=None):
    torch.manual_seed(0)
    shape = {name: ShapeSpec(channels=FPN_CHANNELS, stride=s) for name, s in STRIDES.items()}
    return MaskFormerHead(cfg or tiny_cfg(), shape, task)


def random_features(batch, size, requires_grad=False):
    g = torch.Generator().manual_seed(1)
    features = {name: torch.randn(batch, FPN_CHANNELS, size // s, size // s, generator=g)
                for name, s in STRIDES.items()}
    return {name: f.requires_grad_(requires_grad) for name, f in features.items()}


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


def test_semantic_inference_marginalizes_queries():
    g = torch.Generator().manual_seed(0)
    logits, masks = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 3, 3, generator=g)
    scores = semantic_inference(logits, masks, (3, 3))
    probs = logits.softmax(-1)
    expected = sum(
        probs[:, q, :3, None, None] * masks[:, q, None].sigmoid() for q in range(5)
    )
    torch.testing.assert_close(scores, expected)
    # A query sure of "no object" adds nothing whatever its mask.
    logits[:, 0] = torch.tensor([-BIG, -BIG, -BIG, BIG])
    masks[:, 0] = BIG
    again = semantic_inference(logits, masks, (6, 6))
    assert again.shape == (2, 3, 6, 6)
    torch.testing.assert_close(
        again, semantic_inference(logits[:, 1:], masks[:, 1:], (6, 6)), atol=1e-6, rtol=0
    )


def test_inference_orders_differ_and_masks_is_maskformers():
    g = torch.Generator().manual_seed(0)
    logits, masks = torch.randn(2, 5, 4, generator=g), 3 * torch.randn(2, 5, 4, 4, generator=g)
    by_masks = semantic_inference(logits, masks, (16, 16), "masks")
    by_scores = semantic_inference(logits, masks, (16, 16), "scores")
    # MaskFormer's order, written out: each query's logits upsampled, then the sigmoid.
    probs = logits.softmax(-1)[..., :3]
    expected = torch.zeros(2, 3, 16, 16)
    for q in range(5):
        mask = F.interpolate(masks[:, q:q + 1], size=(16, 16), mode="bilinear",
                             align_corners=False).sigmoid()
        expected += probs[:, q, :, None, None] * mask
    torch.testing.assert_close(by_masks, expected)
    # The sigmoid does not commute with the interpolation: the labels differ somewhere.
    assert (by_masks - by_scores).abs().max() > 1e-3
    assert (by_masks.argmax(1) != by_scores.argmax(1)).any()
    with pytest.raises(ValueError, match="upsample"):
        semantic_inference(logits, masks, (16, 16), "pixels")


@pytest.mark.parametrize("order", ["masks", "scores"])
def test_head_honours_inference_upsample(order):
    cfg = tiny_cfg()
    cfg.MODEL.SEMANTIC_HEAD.INFERENCE_UPSAMPLE = order
    head = build_head(SEMANTIC, cfg).eval()
    features = random_features(1, 64)
    with torch.no_grad():
        scores, _ = head(features)
        mask_features = head.pixel_decoder([features[n] for n in head.in_features])
        (last,) = head.predictor(features["p5"], mask_features)
    expected = semantic_inference(last["pred_logits"], last["pred_masks"], (64, 64), order)
    torch.testing.assert_close(scores, expected)


@pytest.mark.parametrize("key, value", [("PIXEL_DECODER", "fpn"), ("INFERENCE_UPSAMPLE", "both")])
def test_unknown_head_option_names_the_key(key, value):
    cfg = tiny_cfg()
    cfg.MODEL.DRIVABLE_HEAD[key] = value
    with pytest.raises(ValueError, match=f"MODEL.DRIVABLE_HEAD.{key} is '{value}'"):
        build_head(DRIVABLE, cfg)


@pytest.mark.parametrize("name", sorted(PIXEL_DECODERS))
def test_pixel_decoders_give_stride_4_mask_features_and_gradients(name):
    torch.manual_seed(0)
    decoder = PIXEL_DECODERS[name]([16, 24, 32, 48], conv_dim=32, mask_dim=8, norm="GN")
    features = [torch.randn(2, c, 32 // 2 ** i, 40 // 2 ** i, requires_grad=True)
                for i, c in enumerate([16, 24, 32, 48])]
    out = decoder(features)
    assert out.shape == (2, 8, 32, 40)
    assert out.min() < 0  # no activation: the mask features may be negative
    out.square().mean().backward()
    assert all(f.grad.abs().sum() > 0 for f in features)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in decoder.parameters())


def test_maskformer_pixel_decoder_has_3x3_convs_with_norm_at_every_level():
    decoder = MaskFormerPixelDecoder([16, 16, 16], conv_dim=32, mask_dim=8, norm="GN")
    assert [conv.weight.shape[-1] for conv in decoder.outputs] == [3, 3, 3]
    assert all(isinstance(conv.norm, nn.GroupNorm) for conv in decoder.outputs)
    assert decoder.mask_features.weight.shape == (8, 32, 3, 3)
    # The light one: only 1x1 convs.
    light = LightPixelDecoder([16, 16, 16], conv_dim=32, mask_dim=8, norm="GN")
    assert all(m.kernel_size == (1, 1) for m in light.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize("task, num_classes", [(SEMANTIC, 19), (DRIVABLE, 3)])
def test_head_inference_gives_class_scores_at_input_resolution(task, num_classes):
    head = build_head(task).eval()
    with torch.no_grad():
        scores, losses = head(random_features(2, 64))
    assert scores.shape == (2, num_classes, 64, 64) and losses == {}
    # Not probabilities: each of the 6 queries adds at most 1 over the classes of a pixel.
    assert scores.min() >= 0 and scores.sum(1).max() <= 6
    assert torch.isfinite(scores).all() and scores.std() > 0


def test_predictor_skips_intermediate_predictions_in_eval_mode():
    predictor = build_head(SEMANTIC).predictor  # 2 decoder layers, dropout 0
    memory, mask_features = torch.randn(2, FPN_CHANNELS, 2, 2), torch.randn(2, 32, 16, 16)
    with torch.no_grad():
        every_layer = predictor.train()(memory, mask_features)
        last_only = predictor.eval()(memory, mask_features)
    assert len(every_layer) == 2 and len(last_only) == 1
    for key in ("pred_logits", "pred_masks"):
        assert torch.allclose(last_only[0][key], every_layer[-1][key], atol=1e-6)


@pytest.mark.parametrize("task", [SEMANTIC, DRIVABLE])
def test_head_training_losses_reach_every_fpn_level(task):
    head = build_head(task).train()
    features = random_features(2, 64, requires_grad=True)
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, :32], masks[1, :, 40:] = True, True
    targets = [{"labels": torch.tensor([1, 2]), "masks": torch.stack([masks[0], ~masks[0]])},
               {"labels": torch.tensor([0]), "masks": masks[1:]}]
    results, losses = head(features, targets)
    assert results is None and set(losses) == set(head.loss_keys())
    assert len(losses) == 6 and all(k.startswith(f"loss_{task}_") for k in losses)
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    sum(losses.values()).backward()
    for name in ("p2", "p3", "p4", "p5"):
        assert features[name].grad.abs().sum() > 0, name
    assert features["p6"].grad is None  # not an input of the head


def test_head_needs_targets_in_training():
    with pytest.raises(ValueError, match="targets"):
        build_head(DRIVABLE).train()(random_features(1, 64))


class TinyFPN(nn.Module):
    """Image -> p2..p5 (strides 4..32), a stand-in for the ResNet + FPN."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, FPN_CHANNELS, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(FPN_CHANNELS, FPN_CHANNELS, 3, 2, 1), nn.ReLU(),
        )
        self.downs = nn.ModuleList(nn.Conv2d(FPN_CHANNELS, FPN_CHANNELS, 3, 2, 1)
                                   for _ in range(3))

    def forward(self, images):
        features = {"p2": self.stem(images)}
        for level, down in zip(("p3", "p4", "p5"), self.downs):
            features[level] = F.relu(down(features[f"p{int(level[1]) - 1}"]))
        return features


def toy_scenes():
    """Two 64x64 images of flat coloured regions, one colour per class, and their label maps."""
    labels = torch.zeros(2, 64, 64, dtype=torch.int64)
    labels[0, 24:, :40], labels[0, 24:, 40:] = 1, 2
    labels[1, :, 20:] = 2
    labels[1, 40:, 20:50] = 0
    colors = torch.tensor([[1.0, 0.2, 0.2], [0.2, 1.0, 0.2], [0.2, 0.2, 1.0]])
    images = colors[labels].permute(0, 3, 1, 2)
    targets = []
    for label_map in labels:
        present = label_map.unique()
        targets.append({"labels": present, "masks": label_map[None] == present[:, None, None]})
    return images, labels, targets


@pytest.mark.measurement
def test_overfits_a_tiny_batch():
    images, labels, targets = toy_scenes()
    head, backbone = build_head(DRIVABLE), TinyFPN()
    params = list(head.parameters()) + list(backbone.parameters())
    optimizer = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    history = []
    for _ in range(100):
        _, losses = head(backbone(images), targets)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    assert history[-1] < 0.25 * history[0], history[::10]
    head.eval()
    with torch.no_grad():
        scores, _ = head(backbone(images))
    accuracy = (scores.argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9, accuracy


def test_train_net_trains_the_configured_pixel_decoder(sample_root, tmp_path):
    """The tiny config's decoder is the light one; the key switches it for MaskFormer's."""
    import train_net
    from detectron2.engine import default_argument_parser

    from conftest import REPO

    config = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
    args = default_argument_parser().parse_args([
        "--config-file", config, "OUTPUT_DIR", str(tmp_path), "SOLVER.MAX_ITER", "1",
        "MODEL.TASKS", "['drivable']", "MODEL.DRIVABLE_HEAD.PIXEL_DECODER", "maskformer",
    ])
    train_net.main(args)
    cfg = train_net.setup(args)
    model = train_net.Trainer.build_model(cfg)
    assert type(model.heads["drivable"].pixel_decoder) is MaskFormerPixelDecoder
    # The trained checkpoint holds that decoder's weights, and loads into it without gaps.
    weights = torch.load(tmp_path / "model_final.pth", map_location="cpu")["model"]
    expected = {f"heads.drivable.pixel_decoder.{k}" for k in model.heads["drivable"].pixel_decoder
                .state_dict()}
    assert expected == {k for k in weights if k.startswith("heads.drivable.pixel_decoder.")}
