"""The method interface: lazy registry, outside methods by import path, configs and their hashes,
slot rendering, prompt handling, the tiny pipeline's save/load path, artifacts and ``overfit-bench methods``."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import torch

import baselines
from baselines.artifact import Artifact
from baselines.config import config_hash
from baselines.models import Components
from baselines.prompts import PromptEncoder, concept_token_positions, parse_marks, render_template
from baselines.sd15 import SD15_TEXT_CONFIG, SD15_UNET_CONFIG
from tests.baselines_support import (
    FIT_OVERRIDES,
    concept,
    fitted,
    fresh_tiny,
    generate,
    one_thread,
    tiny,
    tiny_dir,
    toy_config,
)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def test_importing_baselines_imports_neither_torch_nor_diffusers() -> None:
    code = "import baselines, sys; print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_registry_lists_the_issue_methods() -> None:
    assert baselines.list_methods() == [
        "base",
        "infusion",
        "infusion-single",
        "infusion-kv",
        "infusion-released",
        "dreambooth",
        "dreambooth-lora",
        "dora",
        "lokr",
        "oft",
        "textual-inversion",
        "custom-diffusion",
    ]
    for name in baselines.list_methods():
        assert baselines.get_method(name).name == name


@pytest.mark.parametrize(
    ("typo", "suggestion"),
    [("infusoin", "infusion"), ("dreambooth_lora", "dreambooth-lora"), ("textual", "")],
)
def test_unknown_method_suggests_the_closest_names(typo: str, suggestion: str) -> None:
    with pytest.raises(baselines.UnknownMethodError) as err:
        baselines.get_method(typo)
    msg = str(err.value)
    assert repr(typo) in msg and "registered:" in msg
    if suggestion:
        assert f"did you mean {suggestion}" in msg


def test_bad_import_paths_raise_clear_errors() -> None:
    with pytest.raises(
        baselines.UnknownMethodError,
        match="method 'no_such_pkg.mod:Thing' cannot be imported: No module named 'no_such_pkg'",
    ):
        baselines.get_method("no_such_pkg.mod:Thing")
    with pytest.raises(baselines.UnknownMethodError, match="has no attribute 'Nope'"):
        baselines.get_method("tests.external_method:Nope")
    with pytest.raises(baselines.UnknownMethodError, match="cannot be created without arguments"):
        baselines.get_method("tests.baselines_support:SyntheticConcept")
    with pytest.raises(baselines.UnknownMethodError, match="lacks fit, load, render"):
        baselines.get_method("tests.baselines_support:INFUSIONS")


def test_outside_method_by_import_path_runs_through_the_same_interface() -> None:
    from metrics.lfd import latent_fisher_divergence

    method = baselines.get_method("tests.external_method:PrefixMethod")
    assert method.render("a {concept} on the beach", concept()) == "a shiny teddybear on the beach"
    art = method.fit(concept(), tiny(), {"anything": 1}, seed=3, progress=False)
    assert art.num_params == 1 and 0 < float(art.tensors["mean_pixel"]) < 255
    pipe = method.load(art, tiny())
    prompt = pipe.render("a {concept} on the beach")
    assert prompt == "a shiny teddybear on the beach"
    base = baselines.get_method("base").load(fitted("base"), tiny())
    assert torch.equal(generate(pipe, [prompt]), generate(base, ["a shiny teddybear on the beach"]))
    z0 = base.sample_latents(["a cat"], [0], steps=2, guidance=5.0)
    assert latent_fisher_divergence(base.eps, pipe.eps, z0, ["a cat"], pipe.alphas_cumprod, [500]) == 0.0


def test_config_resolution_budgets_and_errors() -> None:
    method = baselines.get_method("infusion")
    sd15 = method.resolve_config()
    assert (sd15["steps"], sd15["batch_size"], sd15["grad_accum"], sd15["lr"]) == (500, 4, 4, 0.01)
    assert sd15["inference"] == {"steps": 50, "guidance": 8.0, "eta": 0.0} and sd15["budget"] == "sd15"
    toy = method.resolve_config(toy_config("infusion", lr=1))
    assert (
        toy["budget"] == "toy" and toy["steps"] == 150 and toy["lr"] == 1.0 and isinstance(toy["lr"], float)
    )
    assert toy["templates"] == sd15["templates"] and len(toy["templates"]) == 11
    with pytest.raises(ValueError, match="unknown key 'batchsize'.*did you mean batch_size"):
        method.resolve_config({"batchsize": 2})
    with pytest.raises(ValueError, match=r"unknown budget 'tyo'"):
        method.resolve_config({"budget": "tyo"})
    # a suite's budget lives in its profile: named in a partial config, it is refused with the fix
    with pytest.raises(ValueError, match=r"unknown budget 'toy'.*evaluation profile.*budget_config"):
        method.resolve_config({"budget": "toy", "lr": 1})
    assert method.resolve_config(toy) == toy  # a complete config carries its budget as a label
    with pytest.raises(ValueError, match="expected an integer"):
        method.resolve_config({"steps": 2.5})
    with pytest.raises(ValueError, match="expected true/false"):
        method.resolve_config({"use_mask": "yes"})
    with pytest.raises(ValueError, match=r"config.inference: unknown key 'steeps'; did you mean steps"):
        method.resolve_config({"inference": {"steeps": 3}})
    assert baselines.get_method("dreambooth").resolve_config({"budget": "prior"})["steps"] == 800


def test_config_hash_is_stable_and_covers_every_input() -> None:
    method = baselines.get_method("dreambooth-lora")

    @dataclasses.dataclass
    class Overrides:
        rank: int = 8

    h = method.config_hash({"rank": 8})
    assert h == method.config_hash(Overrides()) == method.config_hash({"rank": 8.0})
    assert len(h) == 64 and h != method.config_hash() != method.config_hash(toy_config("dreambooth-lora"))
    cfg = method.resolve_config({"rank": 8})
    assert h == config_hash("dreambooth-lora", method.version, cfg)
    assert h != config_hash("dreambooth-lora", method.version + "x", cfg)
    assert fitted("dreambooth-lora").meta["config_hash"] == method.config_hash(
        fitted("dreambooth-lora").meta["config"]
    )


def test_every_recipe_cites_its_source_and_the_toy_profile_gives_it_a_small_budget() -> None:
    for name in baselines.list_methods():
        method = baselines.get_method(name)
        recipe = method.recipe
        assert len(recipe.source) > 40 and "toy" not in recipe.budgets  # recipes keep upstream budgets only
        if name != "base":
            assert "diffusers" in recipe.source or "infusion" in recipe.source.lower()
            cfg = toy_config(name)
            assert cfg["steps"] < method.resolve_config()["steps"] and cfg["resolution"] is None


def test_sd15_recipes_match_spec_section_4() -> None:
    get = lambda n, **kw: baselines.get_method(n).resolve_config(kw)  # noqa: E731
    assert (get("dreambooth")["lr"], get("dreambooth")["steps"], get("dreambooth")["identifier"]) == (
        5e-6,
        400,
        "sks",
    )
    prior = get("dreambooth", budget="prior")
    assert (prior["prior_preservation"], prior["num_class_images"], prior["steps"]) == (True, 200, 800)
    assert (
        get("dreambooth-lora")["rank"],
        get("dreambooth-lora")["lr"],
        get("dreambooth-lora")["steps"],
    ) == (4, 1e-4, 500)
    ti = get("textual-inversion")
    assert (ti["lr"], ti["scale_lr"], ti["steps"]) == (5e-4, True, 3000)
    cd = get("custom-diffusion")
    assert (cd["lr"], cd["scale_lr"], cd["steps"], cd["prior_preservation"]) == (1e-5, True, 250, True)
    inf = get("infusion")
    assert (inf["use_mask"], inf["hflip"], inf["prior_preservation"], inf["max_grad_norm"]) == (
        True,
        0.5,
        False,
        None,
    )


@pytest.mark.parametrize(
    ("name", "rendered"),
    [
        ("base", "a teddybear on the beach"),
        ("infusion", "a ⟦teddybear⟧ on the beach"),
        ("infusion-kv", "a ⟦teddybear⟧ on the beach"),
        ("infusion-released", "a ⟦teddybear⟧ on the beach"),
        ("dreambooth", "a sks teddybear on the beach"),
        ("dreambooth-lora", "a sks teddybear on the beach"),
        ("textual-inversion", "a <v1> on the beach"),
        ("custom-diffusion", "a <new1> teddybear on the beach"),
    ],
)
def test_each_method_renders_the_concept_slot_its_own_way(name: str, rendered: str) -> None:
    method = baselines.get_method(name)
    assert method.render("a {concept} on the beach", concept()) == rendered
    assert method.render("a {concept} on the beach", "teddybear") == rendered
    assert method.load(fitted(name), tiny()).render("a {concept} on the beach") == rendered
    assert method.render("a photo of a {class}", concept()) == "a photo of a teddybear"


def test_marks_and_sub_token_positions() -> None:
    tok = tiny().tokenizer
    clean, spans = parse_marks("⟦rc car⟧ and a ⟦teddybear⟧!")
    assert clean == "rc car and a teddybear!" and spans == [(0, 6), (13, 22)]
    assert concept_token_positions(tok, clean, spans) == [1, 2, 5, 6]
    with pytest.raises(ValueError, match="nested"):
        parse_marks("⟦a ⟦b⟧⟧")
    with pytest.raises(ValueError, match="empty"):
        parse_marks("a ⟦⟧ b")
    with pytest.raises(ValueError, match="has a \\{class\\} slot"):
        render_template("a {class}", "x", None)


def test_long_prompts_raise_unless_truncation_is_requested() -> None:
    pipe = tiny()
    long = " ".join(["dog"] * 80)
    with pytest.raises(ValueError, match="82 tokens but the text encoder takes 77"):
        PromptEncoder(pipe.tokenizer, pipe.text_encoder).tokenize(long)
    enc = PromptEncoder(pipe.tokenizer, pipe.text_encoder, truncate=True)
    ids, _ = enc.tokenize(long)
    assert ids.shape == (77,) and int(ids[-1]) == 49407 and enc.truncations == 1
    with pytest.raises(ValueError, match="beyond the 77-token context"):
        enc.tokenize(long + " ⟦teddybear⟧")


def test_tiny_pipeline_round_trip_and_deterministic_generation() -> None:
    from baselines.tiny import make_tiny_pipeline

    direct, loaded = make_tiny_pipeline(), fresh_tiny()
    for a, b in (
        (direct.unet, loaded.unet),
        (direct.vae, loaded.vae),
        (direct.text_encoder, loaded.text_encoder),
    ):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert loaded.tokenizer("a photo of a dog")["input_ids"] == [49406, 320, 1125, 539, 320, 1929, 49407]
    base = baselines.get_method("base")
    out_a = base.load(fitted("base"), direct).generate(["a cat"], [11], steps=2, guidance=3.0)
    out_b = base.load(fitted("base"), loaded).generate(["a cat"], [11], steps=2, guidance=3.0)
    assert out_a.images[0].size == (64, 64)
    assert np.array_equal(np.asarray(out_a.images[0]), np.asarray(out_b.images[0]))
    other = base.load(fitted("base"), loaded).generate(["a cat"], [12], steps=2, guidance=3.0)
    assert not np.array_equal(np.asarray(other.images[0]), np.asarray(out_a.images[0]))


def test_load_model_without_progress_prints_no_loading_bar(capsys) -> None:  # type: ignore[no-untyped-def]
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    from baselines.models import load_model

    tiny_dir()  # saved before capturing
    capsys.readouterr()
    quiet = load_model(str(tiny_dir()), progress=False)
    assert "Loading pipeline components" not in capsys.readouterr().err
    # the libraries' own setting is restored afterwards
    assert diffusers_logging.is_progress_bar_enabled() and transformers_logging.is_progress_bar_enabled()
    load_model(str(tiny_dir()))
    assert "Loading pipeline components" in capsys.readouterr().err
    assert quiet.unet.config == fresh_tiny().unet.config


def test_customized_pipeline_latent_helpers_and_eps_contract() -> None:
    pipe = baselines.get_method("base").load(fitted("base"), tiny())
    z0 = pipe.sample_latents(["a cat", "a dog"], [0, 1], steps=2, guidance=3.0)
    assert z0.shape == (2, 4, 16, 16) and z0.dtype == torch.float32
    assert pipe.alphas_cumprod.shape == (1000,) and pipe.alphas_cumprod.dtype == torch.float64
    images = pipe.decode_latents(z0)
    from baselines.data import image_tensor

    again = pipe.encode_images(torch.stack([image_tensor(im) for im in images]))
    assert again.shape == z0.shape
    pipe.reset_counters()
    eps = pipe.eps(z0, torch.tensor([10, 900]), ["a cat", "a dog"])
    assert eps.shape == z0.shape and (pipe.eps_calls, pipe.eps_rows) == (1, 2)
    with pytest.raises(ValueError, match="2 prompts but 1 seeds"):
        pipe.generate(["a", "b"], [1])


def test_artifact_file_round_trip_and_errors(tmp_path) -> None:
    art = fitted("infusion")
    size = art.save(tmp_path / "inf.safetensors")
    assert art.nbytes == 4 * 352 and size > art.nbytes
    half = art.to(torch.float16)
    assert half.nbytes == 2 * 352 and half.save(tmp_path / "half.safetensors") < size
    back = Artifact.load(tmp_path / "inf.safetensors")
    assert back.meta["class_noun"] == "teddybear" and back.meta["slot"] == "⟦teddybear⟧"
    assert back.meta == art.meta and back.log == {} and len(art.log["losses"]) == 8
    with pytest.raises(FileNotFoundError):
        Artifact.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="made by method 'infusion', not 'infusion-kv'"):
        baselines.get_method("infusion-kv").load(art, tiny())
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not an overfit-bench artifact"):
        Artifact.load(tmp_path / "plain.safetensors")


def test_bad_concepts_raise(tmp_path) -> None:
    from tests.baselines_support import SyntheticConcept

    method = baselines.get_method("infusion")
    with pytest.raises(ValueError, match="class_noun must be a non-empty string"):
        method.fit(SyntheticConcept("x", "", concept().images), tiny(), toy_config("infusion"), seed=0)
    with pytest.raises(ValueError, match="does not exist"):
        method.fit(
            SyntheticConcept("x", "dog", [tmp_path / "nope.png"]), tiny(), toy_config("infusion"), seed=0
        )
    with pytest.raises(ValueError, match="2 masks for 3 images"):
        bad = SyntheticConcept("x", "dog", concept().images, masks=concept().masks[:2])
        method.fit(bad, tiny(), toy_config("infusion"), seed=0)


def _meta_sd15() -> Components:
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from baselines.tiny import clip_tokenizer

    with torch.device("meta"):  # shapes only: the SD-1.5 architecture without allocating weights
        unet = UNet2DConditionModel(**SD15_UNET_CONFIG)
        text = CLIPTextModel(CLIPTextConfig(**SD15_TEXT_CONFIG))
    return Components(unet=unet, text_encoder=text, tokenizer=clip_tokenizer(), scheduler=None)


def _peft_count(name: str, comps: Components | None = None) -> int:
    """peft's own trainable-parameter count for an adapter method: its config injected by
    ``peft.get_peft_model`` into the UNet (SD-1.5 on the meta device by default)."""
    from peft import get_peft_model

    method = baselines.get_method(name)
    cfg = method.resolve_config()
    unet = (comps or _meta_sd15()).unet
    for p in unet.parameters():
        p.requires_grad_(False)
    model = get_peft_model(unet, method.adapter_config(cfg, list(cfg["target_modules"])))
    trainable, _ = model.get_nb_trainable_parameters()
    return int(trainable)


@pytest.mark.parametrize("name", ["dreambooth-lora", "dora", "lokr", "oft"])
def test_adapter_counts_equal_peft_s_own_count_and_a_real_fit(name: str) -> None:
    from baselines.catalog import describe_method
    from baselines.tiny import make_tiny_pipeline

    method = baselines.get_method(name)
    cfg = toy_config(name, **FIT_OVERRIDES.get(name, {}))
    ours = describe_method(name, tiny(), cfg)["trainable_params"]
    from peft import get_peft_model

    unet = make_tiny_pipeline().unet.requires_grad_(False)
    peft_count = get_peft_model(unet, method.adapter_config(cfg, list(cfg["target_modules"])))
    assert ours == peft_count.get_nb_trainable_parameters()[0] > 0
    assert fitted(name).num_params == ours  # the tensors a real fit trains and stores


def test_sd15_trainable_numbers_follow_from_the_definitions() -> None:
    from baselines.catalog import describe_methods

    rows = {r["name"]: r for r in describe_methods(_meta_sd15())}
    widths = [320] * 5 + [640] * 5 + [1280] * 6  # the 16 cross-attention layers' value widths
    expected = {
        "base": 0,
        "infusion": 12_480,
        "infusion-single": 12_480,
        "infusion-kv": 24_960,
        "infusion-released": 24_960,  # infusion-kv's residuals; only the inference routing differs
        "dreambooth": 859_520_964,  # every UNet parameter
        "dreambooth-lora": 797_184,  # rank 4 × (in + out) over to_q/k/v/out.0 of 32 attention layers
        "textual-inversion": 768,  # one token embedding
        "custom-diffusion": 2 * 768 * sum(widths) + 768,  # K and V (768 → d_l) of 16 layers + the token
        # DoRA: LoRA plus one magnitude per output feature of the 8 targeted projections per block
        "dora": 797_184 + 8 * sum(widths),
        # LoKr and OFT: peft's own count on the same layers (below)
        "lokr": _peft_count("lokr"),
        "oft": _peft_count("oft"),
    }
    assert {n: r["trainable_params"] for n, r in rows.items()} == expected
    assert sum(widths) == 12_480
    assert (rows["infusion"]["artifact_bytes_fp32"], rows["infusion"]["artifact_bytes_fp16"]) == (
        49_920,
        24_960,
    )
    assert rows["infusion-kv"]["artifact_bytes_fp32"] == 99_840
    # LoRA rank r on a d_in → d_out layer: r·(d_in + d_out). Per transformer block of width d: self-attention
    # q/k/v/out (d → d) and cross-attention q/out (d → d), k/v (768 → d).
    r = 4
    lora = sum(6 * r * (d + d) + 2 * r * (768 + d) for d in widths)
    assert lora == expected["dreambooth-lora"]


def test_methods_command_json(capsys) -> None:
    from benchmark.cli import main

    assert main(["methods", "--model", "tiny", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert list(by_name) == baselines.list_methods()
    for r in rows:
        assert {
            "name",
            "trainable_params",
            "artifact_bytes_fp32",
            "artifact_bytes_fp16",
            "description",
            "source",
        } <= set(r)
        assert r["artifact_bytes_fp32"] == 4 * r["trainable_params"] == 2 * r["artifact_bytes_fp16"]
    assert by_name["infusion"]["trainable_params"] == fitted("infusion").num_params == 352
    assert 1408 < by_name["infusion"]["artifact_file_bytes"] < 1408 + 8192  # payload + header
    assert main(["methods"]) == 0
    assert "infusion-kv" in capsys.readouterr().out


@pytest.mark.slow
def test_methods_command_on_the_sd15_architecture(capsys) -> None:
    from benchmark.cli import main

    assert main(["methods", "--model", "sd15-arch", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["infusion"]["trainable_params"] == rows["infusion-single"]["trainable_params"] == 12_480
    assert rows["infusion-kv"]["trainable_params"] == 24_960
    assert rows["infusion"]["artifact_bytes_fp32"] == 49_920


def test_an_outside_subclass_without_a_name_of_its_own_is_named_by_its_path() -> None:
    from baselines import load_method

    assert load_method("tests.tuned_method:UnnamedLoRA").name == "tests.tuned_method:UnnamedLoRA"
    assert load_method("tests.tuned_method:RankEightLoRA").name == "rank8-lora"  # it named itself
    assert load_method("dreambooth-lora").name == "dreambooth-lora"
    assert load_method("baselines.lora:DreamBoothLoRA").name == "dreambooth-lora"  # the built-in, by path
