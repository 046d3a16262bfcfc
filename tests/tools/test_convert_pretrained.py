"""tools/convert_pretrained.py: self-supervised torchvision ResNets -> detectron2 weights."""
import os
import sys

import pytest
import torch
import torchvision
from detectron2.modeling import build_model

from conftest import REPO
from lv_adapter import build_config
from lv_adapter.engine import SafeCheckpointer

sys.path.insert(0, os.path.join(REPO, "tools"))
import convert_pretrained  # noqa: E402

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")


@pytest.fixture(scope="module")
def resnet50():
    """torchvision's ResNet-50, random weights and random batch-norm statistics (with the
    defaults, mean 0 / var 1 / weight 1, swapped norms would go unnoticed)."""
    torch.manual_seed(0)
    model = torchvision.models.resnet50()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            for tensor in (module.weight, module.bias, module.running_mean):
                tensor.data.uniform_(-0.5, 0.5)
            module.running_var.data.uniform_(0.5, 2.0)
    return model.eval()


def moco_release(resnet):
    """What MoCo v2 saves: the query encoder with an MLP head, the momentum encoder, the queue,
    the optimizer, all under "state_dict" with DataParallel's "module." prefix."""
    encoder = {k: v for k, v in resnet.state_dict().items() if not k.startswith("fc.")}
    state = {f"module.encoder_q.{k}": v for k, v in encoder.items()}
    state.update({f"module.encoder_k.{k}": v + 1 for k, v in encoder.items()})
    state.update({"module.encoder_q.fc.0.weight": torch.randn(8, 2048),
                  "module.encoder_q.fc.2.weight": torch.randn(4, 8),
                  "module.queue": torch.randn(4, 16), "module.queue_ptr": torch.zeros(1)})
    return {"epoch": 200, "arch": "resnet50", "state_dict": state,
            "optimizer": {"state": {0: {"momentum_buffer": torch.zeros(3)}},
                          "param_groups": [{"lr": 0.03, "params": [0]}]}}


def torchvision_features(resnet, x):
    x = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))
    out = {}
    for i in range(1, 5):
        x = out[f"res{i + 1}"] = getattr(resnet, f"layer{i}")(x)
    return out


def convert(tmp_path, checkpoint, *extra):
    source, output = tmp_path / "release.pth.tar", tmp_path / "converted.pth"
    torch.save(checkpoint, source)
    result = convert_pretrained.main(
        convert_pretrained.parse_args([str(source), str(output), *extra]))
    return result, str(output)


@pytest.mark.parametrize("norm", ["FrozenBN", "BN"])
def test_moco_release_gives_torchvision_features_in_detectron2(resnet50, tmp_path, capsys, norm):
    result, weights = convert(tmp_path, moco_release(resnet50))
    printed = capsys.readouterr().out
    assert "ResNet-50 found under prefix 'state_dict.module.encoder_q.'" in printed
    for row in ("state_dict.module.encoder_k.* (265 tensors)", "state_dict.module.queue\n",
                "state_dict.module.encoder_q.fc.* (2 tensors)", "epoch (not a tensor)",
                "*.num_batches_tracked (106 batch-norm counters)", "optimizer.* (1 tensor)\n"):
        assert row in printed
    cfg = build_config(TINY, [
        "MODEL.RESNETS.DEPTH", "50", "MODEL.RESNETS.RES2_OUT_CHANNELS", "256",
        "MODEL.RESNETS.STRIDE_IN_1X1", "False", "MODEL.RESNETS.NORM", norm,
        "MODEL.WEIGHTS", weights,
    ])
    model = build_model(cfg)
    SafeCheckpointer(model).resume_or_load(cfg.MODEL.WEIGHTS, resume=False)  # as Trainer does
    model.eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = torchvision_features(resnet50, x)
        features = model.backbone.bottom_up(x)
    for name in ("res2", "res3", "res4", "res5"):
        scale = expected[name].abs().max()
        torch.testing.assert_close(features[name], expected[name], rtol=1e-4, atol=1e-4 * scale)


def test_plain_and_swav_style_checkpoints(resnet50, tmp_path):
    state = resnet50.state_dict()
    plain, _ = convert(tmp_path, state)
    assert plain.encoder_prefix == "" and "fc.* (2 tensors)" in plain.unused
    swav = {f"module.{k}": v for k, v in state.items()}
    swav["module.prototypes.weight"] = torch.randn(3, 8)
    converted, _ = convert(tmp_path, {"model": swav})
    assert converted.encoder_prefix == "model.module."
    assert all(torch.equal(converted.weights[k], plain.weights[k]) for k in plain.weights)
    # OpenSelfSup's BYOL / DenseCL: online and target networks of (backbone, neck).
    byol = {f"{net}.0.{k}": v for k, v in state.items() for net in ("online_net", "target_net")}
    byol["online_net.1.mlp.0.weight"] = torch.randn(3, 8)
    assert convert(tmp_path, {"state_dict": byol})[0].encoder_prefix == "state_dict.online_net.0."


def test_ambiguous_incomplete_and_unsafe_checkpoints_are_refused(resnet50, tmp_path):
    state = resnet50.state_dict()
    two = {**{f"a.{k}": v for k, v in state.items()}, **{f"b.{k}": v for k, v in state.items()}}
    with pytest.raises(ValueError, match=r"several ResNets \['a.', 'b.'\]"):
        convert(tmp_path, two)
    assert convert(tmp_path, two, "--prefix", "b.")[0].encoder_prefix == "b."
    os.remove(tmp_path / "converted.pth")
    del state["layer3.2.bn2.running_var"]
    with pytest.raises(ValueError, match=r"missing res4\.2\.conv2\.norm\.running_var"):
        convert(tmp_path, state)
    assert not os.path.exists(tmp_path / "converted.pth")
    with pytest.raises(ValueError, match="--trust-pickle"):
        convert(tmp_path, {"args": torch.nn.Identity(), **resnet50.state_dict()})


@pytest.mark.parametrize("trust", [[], ["--trust-pickle"]])
def test_truncated_and_non_checkpoint_inputs_are_named(resnet50, tmp_path, trust):
    source, output = tmp_path / "release.pth.tar", tmp_path / "converted.pth"
    torch.save(resnet50.state_dict(), source)
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])  # a download cut short
    with pytest.raises(ValueError, match=rf"{source} is not a complete PyTorch checkpoint "
                                         r"\(truncated or damaged"):
        convert_pretrained.main(convert_pretrained.parse_args([str(source), str(output), *trust]))
    source.write_text("<html>404 Not Found</html>")  # what a failed download may leave
    with pytest.raises(ValueError, match=rf"{source} is not a PyTorch checkpoint \(it begins "
                                         r"with b'<htm'"):
        convert_pretrained.main(convert_pretrained.parse_args([str(source), str(output), *trust]))
    assert not os.path.exists(output)
