"""tools/dump_text_features.py, and a whole LV-Adapter run through train_net.py: train with the
text encoder (a stand-in with TaskPrompts' interface), dump the text features, evaluate from the
file without any text encoder."""
import os
import sys

import pytest
import torch
from detectron2.engine import default_argument_parser

import train_net
from conftest import REPO
from fake_prompts import CLASS_COUNTS, FakeTaskPrompts, build_fake_prompts, refuse_to_build
from lv_adapter.modeling.adapter import lv_adapter as lv_adapter_module

sys.path.insert(0, os.path.join(REPO, "tools"))
import dump_text_features  # noqa: E402

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
LV = ["MODEL.ADAPTER.NAME", "LVAdapter", "MODEL.ADAPTER.L2V.NHEADS", "2",
      "MODEL.ADAPTER.L2V.DIM_FEEDFORWARD", "64", "MODEL.ADAPTER.V2L.ENABLED", "True",
      "MODEL.ADAPTER.L2V.INIT_SCALE", "1.0"]  # a large scale: the text features matter


def train_args(output_dir, *opts, extra=()):
    argv = ["--config-file", TINY, *extra, *LV, "OUTPUT_DIR", str(output_dir),
            "MODEL.DEVICE", "cpu", *opts]
    return default_argument_parser().parse_args(argv)


def dump(*argv):
    return dump_text_features.main(dump_text_features.parse_args(["--config-file", TINY, *argv]))


@pytest.fixture(scope="module")
def trained(sample_root, tmp_path_factory):
    """4 iterations of the tiny LV-Adapter student with the live (stand-in) text encoder."""
    out = tmp_path_factory.mktemp("lv_adapter")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lv_adapter_module, "_build_task_prompts", build_fake_prompts)
        train_net.main(train_args(out))
    return out


@pytest.mark.slow
def test_train_dump_then_evaluate_without_the_text_encoder(trained, monkeypatch):
    weights = str(trained / "model_final.pth")
    saved = torch.load(weights, weights_only=False)["model"]
    assert "adapter.text.prompts.context.detection" in saved  # the learned context is kept
    monkeypatch.setattr(lv_adapter_module, "_build_task_prompts", build_fake_prompts)
    path = dump(*LV, "OUTPUT_DIR", str(trained), "MODEL.WEIGHTS", weights)
    assert path == str(trained / "text_features.pth")
    assert not [n for n in os.listdir(trained) if n.startswith(".tmp-")]
    data = torch.load(path, weights_only=True)
    assert data["tasks"] == ["detection", "semantic", "drivable"]
    assert data["class_counts"] == CLASS_COUNTS and data["weights"] == weights
    # The features of the trained context, not of the initial one.
    prompts = FakeTaskPrompts(data["tasks"])
    initial = prompts()
    prefix = "adapter.text.prompts."
    prompts.load_state_dict({k[len(prefix):]: v for k, v in saved.items() if k.startswith(prefix)})
    for task, features in prompts().items():
        assert torch.equal(data["features"][task], features)
        assert not torch.equal(features, initial[task])

    live = train_net.main(train_args(trained, "MODEL.WEIGHTS", weights, extra=["--eval-only"]))
    monkeypatch.setattr(lv_adapter_module, "_build_task_prompts", refuse_to_build)
    from_file = train_net.main(train_args(
        trained, "MODEL.WEIGHTS", weights, "MODEL.ADAPTER.TEXT_FEATURES_FILE", path,
        extra=["--eval-only"],
    ))
    assert {"bbox", "sem_seg", "drivable_seg"} <= set(from_file)
    for task, metrics in live.items():
        for name, value in metrics.items():
            same = pytest.approx(value, abs=1e-6, nan_ok=True)
            assert from_file[task][name] == same, (task, name)


def test_dump_refuses_models_without_live_text_features(tmp_path):
    with pytest.raises(ValueError, match="MODEL.ADAPTER.NAME is 'IdentityAdapter'"):
        dump("--output", str(tmp_path / "x.pth"))
    with pytest.raises(ValueError, match="TEXT_FEATURES_FILE is set .*dump with the config"):
        dump(*LV, "MODEL.ADAPTER.TEXT_FEATURES_FILE", str(tmp_path / "t.pth"))
    assert not os.listdir(tmp_path)


def test_a_crash_while_dumping_leaves_no_file(monkeypatch, tmp_path):
    monkeypatch.setattr(lv_adapter_module, "_build_task_prompts", build_fake_prompts)

    def crash(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"half a file")
        raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        dump("--output", str(tmp_path / "text.pth"), *LV, "MODEL.WEIGHTS", "")
    assert not os.listdir(tmp_path)


def test_bad_command_lines_are_refused_before_the_model_is_built(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(lv_adapter_module, "_build_task_prompts", refuse_to_build)
    with pytest.raises(SystemExit):  # an option after the KEY VALUE pairs
        dump(*LV, "--output", str(tmp_path / "x.pth"))
    assert "--output comes after the KEY VALUE config pairs" in capsys.readouterr().err
    with pytest.raises(ValueError, match=rf"--output {tmp_path} is a folder"):
        dump("--output", str(tmp_path), *LV)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=rf"--output {blocker}/sub: {blocker} is a file"):
        dump("--output", str(blocker / "sub" / "x.pth"), *LV)
