"""Every built-in method on the tiny pipeline: training lowers the loss, save → load reproduces
generations bit for bit, trainable shapes follow the definition, the base model is never modified."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import baselines
from baselines.artifact import Artifact
from baselines.base import BaseMethod
from tests.baselines_support import (
    TRAINED,
    concept,
    fit_config,
    fitted,
    fresh_tiny,
    generate,
    one_thread,
    tiny,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


@pytest.mark.parametrize("name", TRAINED)
def test_a_few_steps_lower_the_loss(name: str) -> None:
    art = fitted(name)
    before, after = art.meta["eval_loss_before"], art.meta["eval_loss_after"]
    assert math.isfinite(before) and math.isfinite(after)
    assert after < before, f"{name}: held-out loss {before:.5f} -> {after:.5f}"
    assert art.meta["steps"] == 8 and len(art.log["losses"]) == 8


@pytest.mark.parametrize("name", TRAINED)
def test_save_load_gives_bit_identical_generations(name: str, tmp_path) -> None:
    method = baselines.get_method(name)
    art = fitted(name)
    nbytes = art.save(tmp_path / "a.safetensors")
    # payload + JSON header (~200 B per tensor name/shape entry + the metadata)
    assert art.nbytes < nbytes < art.nbytes + 200 * len(art.tensors) + 8192
    reloaded = Artifact.load(tmp_path / "a.safetensors")
    assert reloaded.method == name and reloaded.meta["config_hash"] == art.meta["config_hash"]
    assert all(torch.equal(reloaded.tensors[k], v) for k, v in art.tensors.items())

    prompt = method.render("a {concept} in the snow", concept())
    in_memory = method.load(art, tiny())
    from_disk = method.load(tmp_path / "a.safetensors", fresh_tiny())  # pipeline reloaded from disk too
    a = in_memory.generate([prompt, "a dog"], [3, 4], steps=3, guidance=5.0, return_latents=True)
    b = from_disk.generate([prompt, "a dog"], [3, 4], steps=3, guidance=5.0, return_latents=True)
    assert torch.equal(a.latents, b.latents)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images, strict=True))
    again = in_memory.generate([prompt, "a dog"], [3, 4], steps=3, guidance=5.0, return_latents=True)
    assert torch.equal(again.latents, a.latents)  # fixed seeds => identical
    alone = in_memory.generate([prompt], [3], steps=3, guidance=5.0, return_latents=True)
    # Another batch composition may change float rounding, never more (CPU kernels block by batch size).
    assert torch.allclose(alone.latents[0], a.latents[0], rtol=0, atol=1e-4)


@pytest.mark.parametrize("name", TRAINED)
def test_training_changes_the_concept_prompt(name: str) -> None:
    method = baselines.get_method(name)
    prompt = method.render("a {concept} in the snow", concept())
    custom = generate(method.load(fitted(name), tiny()), [prompt])
    base = generate(BaseMethod().load(fitted("base"), tiny()), [prompt])
    assert not torch.equal(custom, base)


@pytest.mark.parametrize("name", [*TRAINED, "base"])
def test_trainable_shapes_match_the_fitted_tensors(name: str) -> None:
    method = baselines.get_method(name)
    art = fitted(name)
    shapes = method.trainable_shapes(tiny(), fit_config(name))
    assert {k: tuple(v.shape) for k, v in art.tensors.items()} == shapes
    assert art.num_params == sum(math.prod(s) for s in shapes.values())
    assert art.nbytes == 4 * art.num_params and art.to(torch.float16).nbytes == 2 * art.num_params


def test_fit_and_load_leave_the_base_pipeline_unchanged() -> None:
    pipe = tiny()
    modules = (pipe.unet, pipe.text_encoder, pipe.vae)
    flags = [p.requires_grad for m in modules for p in m.parameters()]
    state = {k: v.clone() for k, v in pipe.unet.state_dict().items()}
    before = generate(BaseMethod().load(fitted("base"), pipe), ["a dog on the beach"])
    for name in TRAINED:
        fitted(name)
        baselines.get_method(name).load(fitted(name), pipe).generate(["a dog"], [0], steps=1, decode=False)
    baselines.get_method("custom-diffusion").fit(
        concept(), pipe, fit_config("custom-diffusion", steps=1), seed=0
    )
    after = generate(BaseMethod().load(fitted("base"), pipe), ["a dog on the beach"])
    assert torch.equal(before, after)
    assert all(torch.equal(v, pipe.unet.state_dict()[k]) for k, v in state.items())
    assert {type(p).__name__ for p in pipe.unet.attn_processors.values()} == {"AttnProcessor2_0"}
    assert all(p.grad is None for m in modules for p in m.parameters())  # training touched none of them
    assert [p.requires_grad for m in modules for p in m.parameters()] == flags  # flags restored


def test_base_method_is_the_base_model() -> None:
    art = fitted("base")
    assert art.tensors == {} and art.nbytes == 0
    pipe = BaseMethod().load(art, tiny())
    assert pipe.render("a {concept} on the beach") == "a teddybear on the beach"
    z = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([100, 700])
    direct = tiny().unet(z, t, encoder_hidden_states=pipe.encode_prompts(["a", "b"]).embeddings).sample
    assert torch.equal(pipe.eps(z, t, ["a", "b"]), direct)


def test_fit_is_deterministic_for_a_seed() -> None:
    method = baselines.get_method("textual-inversion")
    cfg = fit_config("textual-inversion", steps=3)
    a = method.fit(concept(), tiny(), cfg, seed=5, progress=False)
    b = method.fit(concept(), tiny(), cfg, seed=5, progress=False)
    c = method.fit(concept(), tiny(), cfg, seed=6, progress=False)
    key = "token.<v1>"
    assert torch.equal(a.tensors[key], b.tensors[key])
    assert not torch.equal(a.tensors[key], c.tensors[key])


@pytest.mark.parametrize("name", ["infusion", "dreambooth-lora"])
def test_resume_from_checkpoint_matches_an_uninterrupted_run(name: str, tmp_path) -> None:
    method = baselines.get_method(name)
    cfg = fit_config(name, steps=4, checkpoint_every=2)
    full = method.fit(concept(), tiny(), cfg, seed=1, progress=False)
    method.fit(concept(), tiny(), {**cfg, "steps": 2}, seed=1, progress=False, work_dir=tmp_path)
    ckpts = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert ckpts == ["step-000002.pt"]
    resumed = method.fit(concept(), tiny(), cfg, seed=1, progress=False, work_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000004.pt"]
    assert all(torch.equal(full.tensors[k], resumed.tensors[k]) for k in full.tensors)
    assert resumed.log["losses"] == full.log["losses"] and resumed.log["resumed_from"] == 2
    with pytest.raises(ValueError, match="different run"):
        method.fit(
            concept(), tiny(), {**cfg, "lr": 0.5, "steps": 6}, seed=1, progress=False, work_dir=tmp_path
        )


def test_a_fit_ending_between_checkpoints_leaves_its_last_step_and_a_longer_fit_resumes_there(
    tmp_path,
) -> None:
    from baselines.training import KEEP_LAST

    method = baselines.get_method("dreambooth-lora")
    cfg = fit_config("dreambooth-lora", steps=5, checkpoint_every=4)
    full = method.fit(concept(), tiny(), cfg, seed=1, progress=False)
    # a plain fit (no longer fit to follow) writes no checkpoint off the grid
    alone = tmp_path / "alone"
    method.fit(concept(), tiny(), {**cfg, "steps": 3}, seed=1, progress=False, work_dir=alone)
    assert not (alone / "checkpoints").exists() or not list((alone / "checkpoints").iterdir())
    # a rung of a trajectory (the harness marks its work dir) leaves its last step
    (tmp_path / KEEP_LAST).touch()
    short = method.fit(concept(), tiny(), {**cfg, "steps": 3}, seed=1, progress=False, work_dir=tmp_path)
    assert short.log["resumed_from"] == 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000003.pt"]
    resumed = method.fit(concept(), tiny(), cfg, seed=1, progress=False, work_dir=tmp_path)
    assert resumed.log["resumed_from"] == 3
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000005.pt"]
    assert all(torch.equal(full.tensors[k], resumed.tensors[k]) for k in full.tensors)
    assert resumed.log["losses"] == full.log["losses"]
    assert resumed.meta["eval_loss_before"] == full.meta["eval_loss_before"]
    assert resumed.meta["eval_loss_after"] == full.meta["eval_loss_after"]


def test_prior_preservation_caches_class_images(tmp_path) -> None:
    method = baselines.get_method("dreambooth")
    cfg = fit_config(
        "dreambooth", steps=1, prior_preservation=True, num_class_images=2, class_generation={"steps": 2}
    )
    art = method.fit(concept(), tiny(), cfg, seed=0, progress=False, work_dir=tmp_path)
    files = sorted(p.name for p in (tmp_path / "class_images").iterdir())
    assert files == ["class-0.png", "class-1.png"]
    assert art.meta["config"]["prior_preservation"] is True and math.isfinite(art.log["losses"][0])


def test_a_shorter_fit_keeps_a_later_checkpoint_it_cannot_use(tmp_path) -> None:
    from baselines.training import KEEP_LAST

    method = baselines.get_method("dreambooth-lora")
    cfg = fit_config("dreambooth-lora", steps=4, checkpoint_every=4)
    (tmp_path / KEEP_LAST).touch()
    method.fit(concept(), tiny(), cfg, seed=1, progress=False, work_dir=tmp_path)
    method.fit(concept(), tiny(), {**cfg, "steps": 2}, seed=1, progress=False, work_dir=tmp_path)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000004.pt"]
