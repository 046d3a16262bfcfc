"""The CLIP ResNet backbone: open_clip's image trunk under detectron2's FPN."""
import os

import pytest
import torch
from detectron2.layers import FrozenBatchNorm2d
from detectron2.modeling import build_backbone, build_model

import train_net
from conftest import REPO
from lv_adapter import build_config
from lv_adapter.modeling.clip_loading import create_clip_model

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
CLIP_BACKBONE = ["MODEL.BACKBONE.NAME", "build_clip_resnet_fpn_backbone",
                 "MODEL.CLIP.NAME", "RN50", "SOLVER.IMS_PER_BATCH", "1"]


@pytest.fixture(scope="module")
def clip_checkpoint(tmp_path_factory):
    """A local open_clip RN50 checkpoint with random weights and random batch-norm statistics
    (open_clip zeroes every block's last norm weight, which would hide the residual branches)."""
    torch.manual_seed(0)
    model = create_clip_model("RN50", "")
    for module in model.visual.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
            module.running_mean.data.uniform_(-0.2, 0.2)
            module.running_var.data.uniform_(0.5, 2.0)
    path = tmp_path_factory.mktemp("clip") / "rn50.pt"
    torch.save(model.state_dict(), path)
    return str(path)


def test_res5_is_open_clips_trunk_output(clip_checkpoint):
    cfg = build_config(TINY, CLIP_BACKBONE + ["MODEL.CLIP.WEIGHTS", clip_checkpoint])
    model = build_model(cfg).eval()
    trunk = model.backbone.bottom_up.trunk
    assert next(trunk.parameters()).is_contiguous(memory_format=torch.channels_last)
    assert isinstance(trunk.bn1, FrozenBatchNorm2d)  # MODEL.CLIP.NORM "FrozenBN" by default
    reference = create_clip_model("RN50", clip_checkpoint).eval()
    captured = {}
    reference.visual.layer4.register_forward_hook(lambda m, i, out: captured.update(res5=out))
    x = torch.randn(1, 3, 224, 224)  # the attention pool of open_clip's forward needs 224x224
    with torch.no_grad():
        reference.encode_image(x)  # open_clip's own forward; layer4's output is captured
        features = model.backbone.bottom_up(x)
    assert {k: v.shape[1:] for k, v in features.items()} == {
        "res2": (256, 56, 56), "res3": (512, 28, 28), "res4": (1024, 14, 14), "res5": (2048, 7, 7)}
    scale = captured["res5"].abs().max()
    torch.testing.assert_close(features["res5"], captured["res5"], rtol=1e-4, atol=1e-4 * scale)
    # The trunk is part of the model (trained, checkpointed); the attention pool is not.
    keys = model.state_dict().keys()
    assert "backbone.bottom_up.trunk.layer4.2.conv3.weight" in keys
    assert not [k for k in keys if "attnpool" in k]


@pytest.mark.slow
def test_a_training_step_through_the_config(sample_root):
    cfg = build_config(TINY, CLIP_BACKBONE + ["MODEL.CLIP.WEIGHTS", ""])
    model = train_net.Trainer.build_model(cfg)
    trunk = model.backbone.bottom_up.trunk
    optimizer = train_net.Trainer.build_optimizer(cfg, model)
    batch = next(iter(train_net.Trainer.build_train_loader(cfg)))
    before = trunk.layer2[0].conv2.weight.detach().clone()
    losses = model(batch)
    sum(losses.values()).backward()
    optimizer.step()
    assert all(torch.isfinite(v) for v in losses.values())
    assert not torch.equal(before, trunk.layer2[0].conv2.weight)  # the trunk learns


def test_bn_option_and_bad_settings():
    cfg = build_config(TINY, CLIP_BACKBONE + ["MODEL.CLIP.WEIGHTS", "", "MODEL.CLIP.NORM", "BN",
                                              "MODEL.RESNETS.OUT_FEATURES", "['res2', 'res3']",
                                              "MODEL.FPN.IN_FEATURES", "['res2', 'res3']"])
    bottom_up = build_backbone(cfg).bottom_up
    assert isinstance(bottom_up.trunk.bn1, torch.nn.BatchNorm2d)
    assert bottom_up.trunk.layer3 is None and bottom_up.trunk.layer4 is None  # never run
    for key, value, message in [("MODEL.CLIP.NORM", "GN", "MODEL.CLIP.NORM must be one of"),
                                ("MODEL.CLIP.NAME", "ViT-B-32", "no CLIP ResNet image tower"),
                                ("MODEL.BACKBONE.FREEZE_AT", "2", "FREEZE_AT must be 0")]:
        bad = build_config(TINY, CLIP_BACKBONE + ["MODEL.CLIP.WEIGHTS", "", key, value])
        with pytest.raises(ValueError, match=message):
            build_backbone(bad)
