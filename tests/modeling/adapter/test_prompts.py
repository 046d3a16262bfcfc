"""Task prompts: class names per task, the three modes, gradients and checkpoints."""
import logging
import os

import pytest
import torch
import torch.nn.functional as F
from fvcore.common.checkpoint import Checkpointer

from lv_adapter import build_config
from lv_adapter.modeling.adapter import TaskPrompts, build_task_prompts, build_text_encoder
from lv_adapter.modeling.adapter.prompts import class_names

from conftest import REPO

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
TASKS = ["detection", "semantic", "drivable"]


def prompt_cfg(*opts, model="ViT-S-32-alt"):
    base = ["MODEL.ADAPTER.TEXT_ENCODER.MODEL", model, "MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS", ""]
    return build_config(TINY, base + list(opts))


@pytest.fixture(scope="module")
def encoder():
    """ViT-S-32-alt's text tower: open_clip's RN50 text structure, a quarter of its cost."""
    return build_text_encoder(prompt_cfg())


def test_readable_class_names_per_task():
    names = {task: class_names(task) for task in TASKS}
    assert [len(names[t]) for t in TASKS] == [10, 19, 3]
    assert names["drivable"] == ["direct drivable area", "alternative drivable area", "background"]
    assert names["detection"][8] == "traffic light" and names["semantic"][0] == "road"
    with pytest.raises(ValueError, match="MODEL.TASKS"):
        class_names("depth")


def test_learned_prompts_from_config_give_normalised_features_per_task():
    """The user's path: config keys -> build_task_prompts, on the paper's RN50 tower."""
    prompts = build_task_prompts(prompt_cfg(model="RN50"), TASKS)
    features = prompts()
    assert prompts.tasks == TASKS and list(features) == TASKS and prompts.output_dim == 1024
    assert [features[t].shape for t in TASKS] == [(10, 1024), (19, 1024), (3, 1024)]
    for f in features.values():
        torch.testing.assert_close(f.norm(dim=-1), torch.ones(len(f)))
    # only the learned contexts are state: 16 shared vectors per task, N(0, 0.02)
    state = prompts.state_dict()
    assert sorted(state) == sorted(f"prompts.{t}.context" for t in TASKS)
    assert all(v.shape == (16, 512) for v in state.values())
    assert 0.015 < state["prompts.semantic.context"].std() < 0.025


def test_gradients_reach_every_task_context_and_no_tower_weight(encoder):
    prompts = TaskPrompts(encoder=encoder, tasks=TASKS, n_ctx=4).train()
    sum((f * torch.randn_like(f)).sum() for f in prompts().values()).backward()
    for task in TASKS:
        assert prompts.prompts[task].context.grad.abs().sum() > 0
    assert all(p.grad is None for p in encoder.tower.parameters())


def test_class_specific_context(encoder):
    prompts = TaskPrompts(encoder=encoder, tasks=["drivable"], n_ctx=4, class_specific=True)
    context = prompts.prompts["drivable"].context
    assert context.shape == (3, 4, encoder.width)
    assert not torch.equal(context[0], context[1])  # each class its own draw
    assert prompts()["drivable"].shape == (3, encoder.output_dim)


def test_context_initialised_from_a_phrase_equals_the_handcrafted_prompt(encoder):
    """CTX_INIT "a photo of a" starts exactly at the prompt "a photo of a <name>."."""
    learned = TaskPrompts(encoder=encoder, tasks=TASKS, ctx_init="a photo of a", n_ctx=16)
    assert learned.prompts["semantic"].context.shape == (4, encoder.width)  # N_CTX from the phrase
    fixed = TaskPrompts(encoder=encoder, tasks=TASKS, mode="handcrafted",
                        templates=["a photo of a {}.", "unused {}"])
    with torch.no_grad():
        ours, theirs = learned(), fixed()
    for task in TASKS:
        torch.testing.assert_close(ours[task], theirs[task], atol=2e-6, rtol=0)


def test_handcrafted_and_ensemble_modes(encoder):
    templates = ["a photo of a {}.", "a driving scene with the {}.", "{}"]
    names = class_names("drivable")
    per_template = [encoder([encoder.tokenize(t.format(n)) for n in names]) for t in templates]
    hand = build_task_prompts(prompt_cfg("MODEL.ADAPTER.PROMPT.MODE", "handcrafted",
                                         "MODEL.ADAPTER.PROMPT.TEMPLATES", templates), ["drivable"])
    ens = TaskPrompts(encoder=encoder, tasks=["drivable"], mode="ensemble", templates=templates)
    assert hand.state_dict() == {} and ens.state_dict() == {}
    torch.testing.assert_close(hand()["drivable"], per_template[0], atol=1e-6, rtol=0)
    expected = F.normalize(torch.stack(per_template).mean(0), dim=-1)
    torch.testing.assert_close(ens()["drivable"], expected, atol=1e-6, rtol=0)
    assert not torch.allclose(expected, per_template[0], atol=1e-3)


def test_fixed_prompts_are_encoded_once_and_again_after_a_cast(encoder, monkeypatch):
    prompts = TaskPrompts(encoder=encoder, tasks=["drivable", "detection"], mode="handcrafted")
    calls = []
    original = type(encoder).encode_groups
    monkeypatch.setattr(type(encoder), "encode_groups",
                        lambda self, groups: calls.append(len(groups)) or original(self, groups))
    first = prompts()
    assert calls == [2] and not first["detection"].requires_grad  # both tasks in one call
    prompts()
    assert calls == [2]  # constant features: reused
    prompts.to(torch.float64)
    assert prompts()["detection"].dtype == torch.float64 and calls == [2, 2]
    prompts.float()


ONE_PASS_CASES = {
    "learned": ("MODEL.ADAPTER.PROMPT.N_CTX", "4"),
    "class-specific": ("MODEL.ADAPTER.PROMPT.N_CTX", "3", "MODEL.ADAPTER.PROMPT.CLASS_SPECIFIC",
                       "True"),
    "phrase": ("MODEL.ADAPTER.PROMPT.CTX_INIT", "a photo of a"),
    "handcrafted": ("MODEL.ADAPTER.PROMPT.MODE", "handcrafted"),
    "ensemble": ("MODEL.ADAPTER.PROMPT.MODE", "ensemble", "MODEL.ADAPTER.PROMPT.TEMPLATES",
                 ["a photo of a {}.", "a driving scene with many a {} at night.", "{}"]),
}


@pytest.mark.parametrize("opts", ONE_PASS_CASES.values(), ids=ONE_PASS_CASES.keys())
def test_all_tasks_in_one_pass_equal_task_by_task(encoder, opts):
    """Tasks of 10, 19 and 3 classes through one pass of the tower: the features and the
    gradients of every context are those of encoding each task alone."""
    torch.manual_seed(0)
    prompts = build_task_prompts(prompt_cfg(*opts), TASKS)
    prompts.encoder = encoder  # the module-scoped tower: the config builds the same one
    weights = {t: torch.randn(n, encoder.output_dim) for t, n in zip(TASKS, (10, 19, 3))}
    results = []
    for one_pass in (True, False):
        prompts.one_pass = one_pass
        prompts._fixed_features = None
        prompts.zero_grad()
        features = prompts()
        if prompts.learned:
            sum((features[t] * weights[t]).sum() for t in TASKS).backward()
        results.append((features, [p.grad.clone() for p in prompts.parameters()]))
    (batched, batched_grads), (alone, alone_grads) = results
    for task in TASKS:
        torch.testing.assert_close(batched[task], alone[task], atol=2e-6, rtol=0)
    assert len(batched_grads) == (3 if prompts.learned else 0)
    for ours, theirs in zip(batched_grads, alone_grads):
        # float32 sums in another order: differences of ~1e-5 on gradients of ~1e-2 are rounding
        scale = theirs.abs().max().item()
        torch.testing.assert_close(ours, theirs, atol=1e-3 * scale, rtol=1e-4)


def test_one_pass_runs_each_block_once_for_all_tasks(encoder):
    """Kernel launches, not arithmetic, bound the text side on a GPU: every block of the tower
    runs its MLP once per step for the three tasks (it ran twice per task before)."""
    prompts = TaskPrompts(encoder=encoder, tasks=TASKS, n_ctx=4)
    calls = []
    hooks = [b.mlp.register_forward_hook(lambda *_: calls.append(1)) for b in encoder.tower.blocks]
    try:
        prompts()
    finally:
        for hook in hooks:
            hook.remove()
    assert len(calls) == len(encoder.tower.blocks)


def test_bad_mode_and_templates_name_the_key(encoder):
    with pytest.raises(ValueError, match="MODEL.ADAPTER.PROMPT.MODE"):
        TaskPrompts(encoder=encoder, tasks=TASKS, mode="engineered")
    with pytest.raises(ValueError, match="MODEL.ADAPTER.PROMPT.TEMPLATES"):
        TaskPrompts(encoder=encoder, tasks=TASKS, mode="ensemble", templates=["a {} and a {}"])
    with pytest.raises(ValueError, match="MODEL.ADAPTER.PROMPT.N_CTX"):
        TaskPrompts(encoder=encoder, tasks=TASKS, n_ctx=0)


def test_checkpoint_round_trip_without_tower_weights(tmp_path, caplog):
    """Saved through detectron2's checkpointer: only contexts; a fresh build loads them cleanly."""
    cfg = prompt_cfg("MODEL.ADAPTER.PROMPT.N_CTX", "4")
    trained = build_task_prompts(cfg, TASKS)
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(1.0)
    Checkpointer(trained, str(tmp_path)).save("model")
    saved = torch.load(tmp_path / "model.pth", weights_only=False)["model"]
    assert sorted(saved) == sorted(f"prompts.{t}.context" for t in TASKS)

    fresh = build_task_prompts(cfg, TASKS)
    with caplog.at_level(logging.WARNING):
        Checkpointer(fresh).load(str(tmp_path / "model.pth"))
    assert "missing" not in caplog.text.lower() and "not found" not in caplog.text.lower()
    with torch.no_grad():
        for task, features in trained().items():
            torch.testing.assert_close(fresh()[task], features, atol=0, rtol=0)
