"""The LV-Adapter in the multi-task model: what it changes, what learns, the text-feature cache,
text features from a file."""
import json
import logging
import os
import subprocess
import sys

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from torch.nn import functional as F

from conftest import REPO, subprocess_env
from fake_prompts import CLASS_COUNTS, FakeTaskPrompts, build_fake_prompts, refuse_to_build
from lv_adapter import build_config
from lv_adapter.data import MultiTaskDatasetMapper
from lv_adapter.engine import SafeCheckpointer
from lv_adapter.modeling.adapter import lv_adapter as lv_adapter_module
from lv_adapter.modeling.adapter.text_features import save_text_features

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
LV = ["MODEL.ADAPTER.NAME", "LVAdapter", "MODEL.ADAPTER.L2V.NHEADS", "2",
      "MODEL.ADAPTER.L2V.DIM_FEEDFORWARD", "64"]


def lv_cfg(*opts):
    return build_config(TINY, LV + list(opts))


@pytest.fixture
def fake_prompts(monkeypatch):
    """Models built in the test get FakeTaskPrompts where the real ones would be."""
    monkeypatch.setattr(lv_adapter_module, "_build_task_prompts", build_fake_prompts)


@pytest.fixture(scope="module")
def batch(sample_root):
    """Two mapped train images labeled for every task (fixed, no flip)."""
    cfg = build_config(TINY)
    cfg.INPUT.RANDOM_FLIP = "none"
    mapper = MultiTaskDatasetMapper(cfg, is_train=True)
    dicts = DatasetCatalog.get("bdd100k_multitask_train")
    return [mapper(d) for d in dicts if len(d["labeled_tasks"]) == 3][:2]


def features_file(path, counts=CLASS_COUNTS, dim=16, **metadata):
    generator = torch.Generator().manual_seed(1)
    features = {t: F.normalize(torch.randn(n, dim, generator=generator), dim=-1)
                for t, n in counts.items()}
    save_text_features(str(path), features, **metadata)
    return str(path)


SWITCHES = {  # table 4: (L2V, V2L)
    "l2v": ("True", "False"),
    "l2v+v2l": ("True", "True"),
    "v2l-scoremap": ("False", "True"),
    "scoremap": ("False", "False"),
}


@pytest.mark.parametrize("switches", SWITCHES.values(), ids=SWITCHES.keys())
def test_adapter_changes_p5_and_p6_only(fake_prompts, batch, switches):
    torch.manual_seed(0)
    model = build_model(lv_cfg("MODEL.ADAPTER.L2V.ENABLED", switches[0],
                               "MODEL.ADAPTER.V2L.ENABLED", switches[1],
                               "MODEL.ADAPTER.L2V.INIT_SCALE", "1.0")).eval()
    with torch.no_grad():
        fpn = model.backbone(model.preprocess_image(batch).tensor)
        adapted = model.adapter(fpn)
    assert list(adapted) == list(fpn) == ["p2", "p3", "p4", "p5", "p6"]
    for name in ("p2", "p3", "p4"):
        assert adapted[name] is fpn[name]
    assert adapted["p5"].shape == fpn["p5"].shape
    assert (adapted["p5"] - fpn["p5"]).abs().mean() > 1e-3
    # P6 comes from the FPN's own top block (LastLevelMaxPool: stride-2 subsampling) on new P5.
    assert torch.equal(adapted["p6"], F.max_pool2d(adapted["p5"], 1, 2))
    assert not torch.equal(adapted["p6"], fpn["p6"])


def test_small_initial_scale_starts_close_to_the_identity(fake_prompts, batch):
    model = build_model(lv_cfg()).eval()  # INIT_SCALE 1e-4
    with torch.no_grad():
        fpn = model.backbone(model.preprocess_image(batch).tensor)
        change = (model.adapter(fpn)["p5"] - fpn["p5"]).abs().max()
    assert 0 < change < 1e-2 * fpn["p5"].abs().max()


@pytest.mark.parametrize("switches", [SWITCHES["l2v+v2l"], SWITCHES["v2l-scoremap"]],
                         ids=["l2v+v2l", "v2l-scoremap"])
def test_gradients_reach_the_adapter_and_the_prompt_context(fake_prompts, batch, switches):
    torch.manual_seed(0)
    model = build_model(lv_cfg("MODEL.ADAPTER.L2V.ENABLED", switches[0],
                               "MODEL.ADAPTER.V2L.ENABLED", switches[1]))
    sum(model(batch[:1]).values()).backward()
    params = dict(model.adapter.named_parameters())
    assert any(name.startswith("text.prompts.context.") for name in params)
    no_grad = [n for n, p in params.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad
    # The top block is the backbone's, not a copy in the adapter.
    assert not any(n.startswith("adapter.") and "top_block" in n for n in model.state_dict())


def predictions(model, inputs):
    outputs = model(inputs)
    return [(o["sem_seg"], o["drivable_seg"], o["instances"].pred_boxes.tensor,
             o["instances"].scores) for o in outputs]


def assert_same_predictions(a, b, exact=True):
    for x, y in zip(a, b):
        for u, v in zip(x, y):
            tolerance = {"rtol": 0, "atol": 0} if exact else {"rtol": 1e-4, "atol": 1e-4}
            torch.testing.assert_close(u, v, **tolerance)


def eval_inputs(batch):
    return [{"image": x["image"]} for x in batch]


def test_cached_inference_equals_live_inference(fake_prompts, batch):
    torch.manual_seed(0)
    model = build_model(lv_cfg()).eval()
    prompts = model.adapter.text.prompts
    with torch.no_grad():
        first = predictions(model, eval_inputs(batch))
        second = predictions(model, eval_inputs(batch))
    assert prompts.calls == 1  # computed once, then cached
    assert_same_predictions(first, second)
    with torch.enable_grad():  # the context wants gradients: the live path, every time
        live = predictions(model, eval_inputs(batch))
    assert prompts.calls == 2
    # Not bit-equal: without autograd, attention takes PyTorch's fused inference kernel.
    assert_same_predictions(first, live, exact=False)


def test_cache_is_dropped_by_a_training_step_and_by_loading_weights(fake_prompts, batch):
    torch.manual_seed(0)
    model = build_model(lv_cfg())
    text = model.adapter.text
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model.eval()
    with torch.no_grad():
        before = {t: f.clone() for t, f in text().items()}
    model.train()
    assert text._cache is None
    sum(model(batch[:1]).values()).backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after = text()
    assert not torch.equal(after["detection"], before["detection"])
    assert all(torch.equal(f, g) for f, g in zip(after.values(), text.prompts().values()))
    # In eval mode, new weights (an in-place copy) replace the cached features too.
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["adapter.text.prompts.context.semantic"] += 1.0
    model.load_state_dict(state)
    with torch.no_grad():
        reloaded = text()
    assert not torch.equal(reloaded["semantic"], after["semantic"])
    assert all(torch.equal(f, g) for f, g in zip(reloaded.values(), text.prompts().values()))
    # So does a move to another device or dtype, even of tensors the key cannot see.
    calls = text.prompts.calls
    text.to(torch.float64)
    with torch.no_grad():
        assert text()["semantic"].dtype == torch.float64
    assert text.prompts.calls == calls + 1


def test_prompts_with_wrong_class_counts_are_refused(monkeypatch, batch):
    # A head whose class count differs from its dataset's is refused by the config itself ...
    with pytest.raises(ValueError, match=r"MODEL.SEMANTIC_HEAD.NUM_CLASSES is 18 but dataset "
                                         r"'bdd100k_sem_seg_train' has 19 semantic classes"):
        lv_cfg("MODEL.SEMANTIC_HEAD.NUM_CLASSES", "18",
               "DATASETS.TRAIN", "('bdd100k_sem_seg_train',)")
    # ... and prompts of another class count (as from another dataset) by the adapter.
    monkeypatch.setattr(lv_adapter_module, "_build_task_prompts",
                        lambda cfg, tasks: FakeTaskPrompts(tasks))
    cfg = lv_cfg("DATASETS.TRAIN", "()", "DATASETS.TEST", "()")
    cfg.MODEL.SEMANTIC_HEAD.NUM_CLASSES = 18
    model = build_model(cfg)
    with pytest.raises(ValueError, match=r"semantic: features of shape \(19, 16\) for 18 classes"):
        model(batch)


def test_features_file_replaces_the_text_encoder(monkeypatch, batch, tmp_path):
    monkeypatch.setattr(lv_adapter_module, "_build_task_prompts", refuse_to_build)
    path = features_file(tmp_path / "text.pth", dim=24)
    model = build_model(lv_cfg("MODEL.ADAPTER.TEXT_FEATURES_FILE", path))
    assert not list(model.adapter.text.parameters())
    assert not any(k.startswith("adapter.text.") for k in model.state_dict())
    assert model.adapter.text_features().shape == (32, 32)  # 10 + 19 + 3 classes, FPN width
    sum(model(batch[:1]).values()).backward()
    assert all(p.grad is not None for p in model.adapter.parameters())


@pytest.mark.parametrize("counts, message", [
    ({"detection": 10, "semantic": 19}, r"tasks \['detection', 'semantic'\].*"
                                        r"MODEL.TASKS\) are \['detection', 'drivable', 'semantic'"),
    ({"detection": 10, "semantic": 18, "drivable": 3}, r"semantic: features of shape \(18, 16\)"),
])
def test_mismatched_features_file_is_refused(tmp_path, counts, message):
    path = features_file(tmp_path / "other.pth", counts)
    with pytest.raises(ValueError, match=f"TEXT_FEATURES_FILE {path}.*{message}"):
        build_model(lv_cfg("MODEL.ADAPTER.TEXT_FEATURES_FILE", path))


def test_missing_or_foreign_features_file_is_refused(tmp_path):
    missing = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match=f"TEXT_FEATURES_FILE: .*{missing} does not"):
        build_model(lv_cfg("MODEL.ADAPTER.TEXT_FEATURES_FILE", missing))
    foreign = str(tmp_path / "model.pth")
    torch.save({"model": {"w": torch.zeros(2)}}, foreign)
    with pytest.raises(ValueError, match=f"{foreign} is not a text features file"):
        build_model(lv_cfg("MODEL.ADAPTER.TEXT_FEATURES_FILE", foreign))
    damaged = tmp_path / "damaged.pth"
    data = torch.load(features_file(tmp_path / "whole.pth"), weights_only=True)
    del data["features"]
    torch.save(data, damaged)
    with pytest.raises(ValueError, match=f"{damaged} has no 'features' entry"):
        build_model(lv_cfg("MODEL.ADAPTER.TEXT_FEATURES_FILE", str(damaged)))


def test_a_features_file_of_another_width_is_named_when_the_checkpoint_loads(
        fake_prompts, tmp_path):
    live = build_model(lv_cfg())
    SafeCheckpointer(live, save_dir=str(tmp_path)).save("live")
    path = features_file(tmp_path / "wide.pth", dim=24)  # the live encoder's are 16 wide
    model = build_model(lv_cfg("MODEL.ADAPTER.TEXT_FEATURES_FILE", path))
    with pytest.raises(ValueError, match=rf"(?s)adapter.text_proj.*TEXT_FEATURES_FILE {path}, "
                                         r"24 wide: .*dumped from another text encoder"):
        SafeCheckpointer(model).load(str(tmp_path / "live.pth"))


def test_live_checkpoint_loads_into_a_features_file_model(fake_prompts, batch, tmp_path, caplog):
    """Same predictions; the prompt tensors are dropped with one info line, no key warnings."""
    torch.manual_seed(0)
    live = build_model(lv_cfg()).eval()
    SafeCheckpointer(live, save_dir=str(tmp_path)).save("live")
    with torch.no_grad():
        path = features_file(tmp_path / "text.pth")
        save_text_features(path, live.adapter.text())
        expected = predictions(live, eval_inputs(batch))
    model = build_model(lv_cfg("MODEL.ADAPTER.TEXT_FEATURES_FILE", path)).eval()
    messages = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    fvcore_logger = logging.getLogger("fvcore.common.checkpoint")
    fvcore_logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="lv_adapter"):
            SafeCheckpointer(model).load(str(tmp_path / "live.pth"))
    finally:
        fvcore_logger.removeHandler(handler)
    assert not [m for m in messages if "not found" in m or "not used" in m], messages
    ignored = [r.message for r in caplog.records if "ignoring the checkpoint" in r.message]
    assert len(ignored) == 1 and "3 prompt tensors (adapter.text.prompts.context." in ignored[0]
    with torch.no_grad():
        assert_same_predictions(predictions(model, eval_inputs(batch)), expected)


NO_ENCODER_SCRIPT = """
import json, sys
import torch
from detectron2.modeling import build_model
from lv_adapter import build_config
cfg = build_config(sys.argv[1], sys.argv[2:])
model = build_model(cfg).eval()
with torch.no_grad():
    model([{"image": torch.zeros(3, 72, 128)}])
print(json.dumps({
    "modules": [m for m in ("open_clip", "transformers") if m in sys.modules],
    "text_tensors": [n for n, _ in model.adapter.text.named_parameters()]
    + [n for n, _ in model.adapter.text.named_buffers()],
}))
"""


def test_features_file_model_imports_no_text_encoder(tmp_path):
    path = features_file(tmp_path / "text.pth")
    env = subprocess_env()
    cmd = [sys.executable, "-c", NO_ENCODER_SCRIPT, TINY, *LV,
           "MODEL.ADAPTER.TEXT_FEATURES_FILE", path, "MODEL.DEVICE", "cpu"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] == []
    assert report["text_tensors"] == ["features_detection", "features_semantic",
                                      "features_drivable"]
