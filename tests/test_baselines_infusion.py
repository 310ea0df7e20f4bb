"""Infusion's guarantees on the tiny pipeline: zero residuals and unmarked prompts reproduce the base
model exactly, the residual lands on every sub-token of a multi-token class word, the dual stream uses
the base model's attention probabilities in every cross-attention layer, and only residuals train."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import baselines
from baselines.artifact import Artifact
from baselines.base import BaseMethod
from baselines.models import components_of
from baselines.processors import AttentionState, ConceptAttnProcessor, cross_attention_layers, use_processors
from baselines.prompts import EncodedPrompts
from baselines.training import TrainConfig, Trainer
from tests.baselines_support import INFUSIONS, concept, fit_config, fitted, generate, one_thread, tiny


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


UNMARKED = ["a photo of a teddybear", "a dog on the beach", ""]


def _base_pipe():
    return BaseMethod().load(fitted("base"), tiny())


def _zero(name: str) -> Artifact:
    art = fitted(name)
    return Artifact(name, {k: torch.zeros_like(v) for k, v in art.tensors.items()}, dict(art.meta))


def _noisy(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 4, 16, 16, generator=g), torch.randint(0, 1000, (n,), generator=g)


@pytest.mark.parametrize("name", INFUSIONS)
def test_zero_residuals_reproduce_the_base_pipeline(name: str) -> None:
    custom = baselines.get_method(name).load(_zero(name), tiny())
    marked = custom.render("a {concept} in the jungle")
    assert marked == "a ⟦teddybear⟧ in the jungle"
    z, t = _noisy(2)
    got = custom.eps(z, t, [marked] * 2)
    want = _base_pipe().eps(z, t, ["a teddybear in the jungle"] * 2)
    images = generate(custom, [marked], [7]), generate(_base_pipe(), ["a teddybear in the jungle"], [7])
    if name == "infusion":
        # The dual stream runs the UNet on more rows (partners appended), and CPU kernels may round
        # differently for another batch size: equal up to float32 rounding ...
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
        torch.testing.assert_close(images[0], images[1], rtol=0, atol=1e-4)
        # ... and bit-identical to the base stream computed in the same batch.
        cond = custom.encode_prompts([marked] * 2)
        z_in, t_in, ctx = custom.runner.prepare(z, t, cond)
        with custom.runner.installed(custom.unet), torch.no_grad():
            out = custom.unet(z_in, t_in, encoder_hidden_states=ctx).sample
        assert out.shape[0] == 4 and torch.equal(out[:2], out[2:])
    else:
        assert torch.equal(got, want)
        assert torch.equal(images[0], images[1])


@pytest.mark.parametrize("name", INFUSIONS)
def test_unmarked_prompts_are_identical_to_base(name: str) -> None:
    art = fitted(name)
    assert any(bool(v.abs().sum() > 0) for v in art.tensors.values())  # a real, non-zero customization
    custom = baselines.get_method(name).load(art, tiny())
    base = _base_pipe()
    assert torch.equal(generate(custom, UNMARKED), generate(base, UNMARKED))
    z, t = _noisy(3)
    custom.reset_counters()
    assert torch.equal(custom.eps(z, t, UNMARKED), base.eps(z, t, UNMARKED))
    assert (custom.eps_calls, custom.eps_rows, custom.unet_rows) == (1, 3, 3)  # no partner rows needed
    marked = custom.eps(z, t, [custom.render("a photo of a {concept}")] * 3)
    assert not torch.equal(marked, base.eps(z, t, ["a photo of a teddybear"] * 3))


def test_unconditional_branch_gets_no_residual() -> None:
    custom = baselines.get_method("infusion-kv").load(fitted("infusion-kv"), tiny())
    prompt = custom.render("a {concept} on the beach")
    cond = EncodedPrompts.cat([custom.encode_prompts([""]), custom.encode_prompts([prompt])])
    assert cond.concept_mask is not None
    assert not cond.concept_mask[0].any() and cond.concept_mask[1].sum() == 2
    z, t = _noisy(1)
    zz, tt = torch.cat([z, z]), torch.cat([t, t])
    with torch.no_grad():
        out = custom.predict(zz, tt, cond)
    base = _base_pipe().eps(zz, tt, ["", "a teddybear on the beach"])  # same batch size, same row 0
    assert torch.equal(out[0], base[0])
    assert not torch.equal(out[1], base[1])


def test_multi_token_class_word_gets_the_residual_on_all_sub_tokens() -> None:
    pipe = tiny()
    custom = baselines.get_method("infusion-single").load(fitted("infusion-single"), pipe)
    prompt = custom.render("a photo of a {concept}, on a table")
    enc = custom.encode_prompts([prompt])
    assert enc.concept_mask is not None
    positions = enc.concept_mask[0].nonzero().flatten().tolist()
    ids = custom.prompt_encoder.tokenize(prompt)[0]
    assert positions == [5, 6]  # BOS, a, photo, of, a, teddy, bear
    assert pipe.tokenizer.convert_ids_to_tokens(ids[positions].tolist()) == ["teddy", "bear</w>"]

    # Processor level: out = A V + A[:, j] r for every marked j, i.e. the residual reaches both sub-tokens.
    name, attn = next(iter(cross_attention_layers(pipe.unet).items()))
    r = torch.randn(attn.to_v.out_features, generator=torch.Generator().manual_seed(1))
    hidden = torch.randn(1, 16, attn.to_q.in_features, generator=torch.Generator().manual_seed(2))
    state = AttentionState(token_mask=enc.concept_mask.float(), recorder={})
    out = ConceptAttnProcessor(name, state, value_residual=r)(attn, hidden, enc.embeddings)
    plain = ConceptAttnProcessor(name, AttentionState(recorder={}))(attn, hidden, enc.embeddings)
    probs = state.recorder[name][0]  # [1, heads, queries, L]
    heads, head_dim = attn.heads, attn.to_v.out_features // attn.heads
    weight_on_concept = probs[0][:, :, positions].sum(-1)  # [heads, queries]
    injected = (weight_on_concept[:, :, None] * r.view(heads, 1, head_dim)).permute(1, 0, 2).reshape(16, -1)
    expected = plain + injected @ attn.to_out[0].weight.T
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def _record(pipe, prompts: list[str], z: torch.Tensor, t: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    pipe.runner.state.recorder = {}
    try:
        pipe.eps(z, t, prompts)
        return pipe.runner.state.recorder
    finally:
        pipe.runner.state.recorder = None


def test_dual_stream_uses_the_base_models_attention_probabilities_in_every_layer() -> None:
    pipe = tiny()
    z, t = _noisy(2, seed=3)
    # Base model, alone, with recording processors on every cross-attention layer.
    state = AttentionState(recorder={})
    layers = cross_attention_layers(pipe.unet)
    with use_processors(pipe.unet, {n: ConceptAttnProcessor(n, state) for n in layers}):
        base_enc = _base_pipe().encode_prompts(["a photo of a teddybear", "a dog"])
        pipe.unet(z, t, encoder_hidden_states=base_enc.embeddings)
    base_probs = state.recorder

    custom = baselines.get_method("infusion").load(fitted("infusion"), pipe)
    rec = _record(custom, [custom.render("a photo of a {concept}"), "a dog"], z, t)
    assert set(rec) == set(base_probs) == set(layers) and len(layers) == 7
    for name in layers:
        used = rec[name][0]  # rows: [custom marked, custom unmarked, base partner of row 0]
        assert used.shape[0] == 3
        torch.testing.assert_close(used[:2], base_probs[name][0], rtol=0, atol=1e-6)
        torch.testing.assert_close(used[0], used[2], rtol=0, atol=0)

    # Sensitivity: the single-stream ablation with the same kind of residuals does move the maps.
    single = baselines.get_method("infusion-single").load(fitted("infusion-single"), pipe)
    rec_single = _record(single, [single.render("a photo of a {concept}"), "a dog"], z, t)
    moved = [n for n in layers if not torch.allclose(rec_single[n][0][0], base_probs[n][0][0], atol=1e-6)]
    assert moved, "single-stream residuals should change some later layer's attention"


@pytest.mark.parametrize("name", INFUSIONS)
def test_trainable_parameters_are_exactly_the_residuals(name: str) -> None:
    method = baselines.get_method(name)
    pipe = tiny()
    comps = components_of(pipe)
    cfg = method.resolve_config(fit_config(name))
    custom = method.customize(comps, cfg, "teddybear", None)
    layers = cross_attention_layers(comps.unet)
    kinds = ("value", "key") if name == "infusion-kv" else ("value",)
    assert set(custom.params) == {f"{k}.{n}" for k in kinds for n in layers}
    assert all(p.requires_grad and p.ndim == 1 and not p.any() for p in custom.params.values())
    trainer = Trainer(custom.pipeline, custom.params, TrainConfig.from_config(cfg), seed=0)
    optimized = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert optimized == {id(p) for p in custom.params.values()}
    expected = sum(
        a.to_v.out_features + (a.to_k.out_features if name == "infusion-kv" else 0) for a in layers.values()
    )
    assert (
        sum(p.numel() for p in custom.params.values()) == expected == (704 if name == "infusion-kv" else 352)
    )
    # No module parameter was added to the UNet by the processors.
    assert len(list(comps.unet.parameters())) == len(list(tiny().unet.parameters()))


def test_infusion_lfd_is_zero_on_non_customized_prompts_and_dreambooth_is_not() -> None:
    from metrics.lfd import latent_fisher_divergence

    base = _base_pipe()
    z0 = base.sample_latents(["a dog on the beach", "a cat"], [0, 1], steps=2, guidance=5.0)
    args = (z0, ["a dog on the beach", "a cat"], base.alphas_cumprod, [100, 500, 900])
    for name in ("infusion", "textual-inversion"):
        custom = baselines.get_method(name).load(fitted(name), tiny())
        custom.reset_counters()
        assert latent_fisher_divergence(base.eps, custom.eps, *args) == 0.0
        assert custom.eps_rows == 2 * 3 and custom.unet_rows == 2 * 3  # N·|T| customized rows
    dreambooth = baselines.get_method("dreambooth").load(fitted("dreambooth"), tiny())
    assert latent_fisher_divergence(base.eps, dreambooth.eps, *args) > 0.0


def test_textual_inversion_prompts_without_its_token_are_identical_to_base() -> None:
    custom = baselines.get_method("textual-inversion").load(fitted("textual-inversion"), tiny())
    assert custom.render("a {concept} on the beach") == "a <v1> on the beach"
    base = _base_pipe()
    assert torch.equal(generate(custom, UNMARKED), generate(base, UNMARKED))
    z, t = _noisy(2)
    with_token = custom.eps(z, t, ["a <v1> on the beach"] * 2)
    assert not torch.equal(with_token, base.eps(z, t, ["a teddybear on the beach"] * 2))
    assert custom.prompt_encoder.tokenize("a <v1>")[0][2] == 49408  # the added token, one id


def test_concept_not_found_and_bad_marks_raise() -> None:
    from baselines.prompts import mark_word, parse_marks

    assert mark_word("A Teddybear, on a table", "teddybear") == "A ⟦Teddybear⟧, on a table"
    with pytest.raises(ValueError, match="not found"):
        mark_word("a photo of a dog", "teddybear")
    with pytest.raises(ValueError, match="not closed"):
        parse_marks("a ⟦dog")
    custom = baselines.get_method("infusion").load(fitted("infusion"), tiny())
    with pytest.raises(ValueError, match="whole words"):
        custom.encode_prompts(["a ⟦dog⟧s on the beach"])


def test_concept_used_in_masked_training() -> None:
    art = fitted("infusion")
    assert concept().masks is not None and art.meta["config"]["use_mask"] is True
    method = baselines.get_method("infusion")
    unmasked = method.fit(
        concept(), tiny(), fit_config("infusion", use_mask=False, steps=1), seed=0, progress=False
    )
    masked = method.fit(concept(), tiny(), fit_config("infusion", steps=1), seed=0, progress=False)
    # The masked loss only counts the foreground (≈ 40×34 of 80×72 pixels), so it is much smaller.
    assert masked.meta["eval_loss_before"] < 0.6 * unmasked.meta["eval_loss_before"]


def test_released_routing_acts_on_every_bare_class_word_and_trains_like_infusion_kv() -> None:
    """infusion-released: the same training as infusion-kv (bit-identical residuals); at inference a bare
    class word gets the residual exactly as a marked one does, a prompt without the class word does not."""
    from baselines.prompts import route_class_word

    assert route_class_word("a Teddybear and a teddybear", "teddybear") == "a ⟦Teddybear⟧ and a ⟦teddybear⟧"
    assert route_class_word("a ⟦teddybear⟧ and a teddybear", "teddybear") == "a ⟦teddybear⟧ and a teddybear"
    assert route_class_word("a dog", "teddybear") == "a dog"
    released, kv = fitted("infusion-released"), fitted("infusion-kv")
    assert released.tensors.keys() == kv.tensors.keys()
    assert all(torch.equal(released.tensors[k], kv.tensors[k]) for k in kv.tensors)
    rel = baselines.get_method("infusion-released").load(released, tiny())
    marked_kv = baselines.get_method("infusion-kv").load(kv, tiny())
    base = _base_pipe()
    z, t = _noisy(2)
    bare = ["a teddybear in the jungle"] * 2
    got = rel.eps(z, t, bare)
    assert torch.equal(got, marked_kv.eps(z, t, ["a ⟦teddybear⟧ in the jungle"] * 2))
    assert not torch.equal(got, base.eps(z, t, bare))  # class-prior drift by design
    assert torch.equal(marked_kv.eps(z, t, bare), base.eps(z, t, bare))  # the marked routing leaves it alone
    other = ["a dog on the beach", ""]
    assert torch.equal(rel.eps(z, t, other), base.eps(z, t, other))
