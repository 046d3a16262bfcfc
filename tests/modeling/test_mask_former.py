"""The MaskFormer head: inference, pixel decoders, forward passes and a short overfit run
(its criterion: test_mask_former_criterion.py)."""
import os

import pytest
import torch
from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from torch import nn
from torch.nn import functional as F

from lv_adapter.config import add_lv_adapter_config
from lv_adapter.modeling.segmentation import (
    PIXEL_DECODERS,
    LightPixelDecoder,
    MaskFormerHead,
    MaskFormerPixelDecoder,
    semantic_inference,
)
from lv_adapter.tasks import DRIVABLE, SEMANTIC, get_task, mask_task_names

BIG = 30.0
FPN_CHANNELS = 16  # differs from the hidden size, so the memory projection is exercised
STRIDES = {"p2": 4, "p3": 8, "p4": 16, "p5": 32, "p6": 64}


def tiny_cfg():
    cfg = get_cfg()
    add_lv_adapter_config(cfg)
    for task in mask_task_names():
        cfg.MODEL[get_task(task).head_node].merge_from_list([
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
