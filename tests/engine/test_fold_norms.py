"""Folding constant norms into convolutions: same outputs, fewer layers."""
import os

import torch
from detectron2.layers import Conv2d, FrozenBatchNorm2d
from detectron2.modeling import build_model
from torch import nn

from conftest import REPO
from lv_adapter import build_config
from lv_adapter.engine import fold_frozen_norms


def random_stats(norm, generator):
    channels = norm.weight.shape[0]
    norm.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
    norm.bias.copy_(torch.randn(channels, generator=generator))
    norm.running_mean.copy_(torch.randn(channels, generator=generator))
    norm.running_var.copy_(torch.rand(channels, generator=generator) + 0.1)
    return norm


@torch.no_grad()
def test_folded_convolutions_compute_the_same_function():
    g = torch.Generator().manual_seed(0)
    frozen = Conv2d(3, 8, 3, padding=1, bias=False,
                    norm=random_stats(FrozenBatchNorm2d(8), g), activation=nn.ReLU())
    batch_norm = Conv2d(8, 4, 1, bias=True, norm=random_stats(nn.BatchNorm2d(4), g))
    training_bn = Conv2d(4, 4, 1, norm=nn.BatchNorm2d(4))
    model = nn.Sequential(frozen, batch_norm, training_bn).eval()
    training_bn.norm.train()  # still learning its statistics: must be left alone
    x = torch.randn(2, 3, 9, 9, generator=g)
    expected = model(x)
    assert fold_frozen_norms(model) == 2
    assert frozen.norm is None and batch_norm.norm is None
    assert isinstance(training_bn.norm, nn.BatchNorm2d)
    torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_folded_multitask_model_predicts_the_same(sample_root):
    cfg = build_config(os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml"))
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    for module in model.modules():  # non-trivial statistics, as after training
        if isinstance(module, nn.BatchNorm2d):
            random_stats(module, torch.Generator().manual_seed(1))
    image = torch.randint(0, 255, (3, 72, 128), generator=torch.Generator().manual_seed(2))
    expected = model([{"image": image.float()}])[0]
    assert fold_frozen_norms(model) > 0
    folded = model([{"image": image.float()}])[0]
    for key in ("sem_seg", "drivable_seg"):
        torch.testing.assert_close(folded[key], expected[key], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(folded["instances"].scores, expected["instances"].scores,
                               rtol=1e-4, atol=1e-4)
