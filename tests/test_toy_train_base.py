"""The toy base-model trainer at tiny size: stages run and record, resume is exact, the export loads in
``baselines.models.load_model`` and every baseline method runs on it unchanged."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import baselines
from baselines.models import components_of, load_model
from benchmark.io import sha256_file
from benchmark.toy import architecture as arch
from benchmark.toy.config import PRESETS, BaseModelConfig
from benchmark.toy.data import CaptionTokenizer, dataset_scenes, training_caption
from benchmark.toy.io import SHA256_MANIFEST, verify_sha256_manifest
from benchmark.toy.render import render
from benchmark.toy.train_base import Run, main, train
from benchmark.toy.world import PRETRAIN_PATTERNS, RESERVED_PAIRS, Scene, caption, is_held_out
from tests.baselines_support import toy_config

TINY = PRESETS["tiny"]
WEIGHTS = (
    "unet/diffusion_pytorch_model.safetensors",
    "text_encoder/model.safetensors",
    "vae/diffusion_pytorch_model.safetensors",
)


@pytest.fixture(autouse=True)
def _threads() -> Iterator[None]:
    """One thread inside these tests (results are compared bit for bit); the caller's count after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def _trained(root: str) -> Path:
    out = Path(root) / "run"
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # as every test here, so that runs compare bit for bit
    try:
        train(out, "all", config=TINY)
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted tiny run (shared by the tests of this module)."""
    return _trained(str(tmp_path_factory.mktemp("toy-base")))


def test_every_stage_runs_and_is_recorded(trained: Path) -> None:
    record = json.loads((trained / "training_record.json").read_text())
    assert record["seed"] == TINY.seed and record["config"] == TINY.to_dict()
    for stage, total in (("vae", TINY.vae_steps), ("decoder", TINY.decoder_steps), ("unet", TINY.unet_steps)):
        st = record["stages"][stage]
        assert st["steps_done"] == st["total_steps"] == total
        assert [p[0] for p in st["loss_curve"]] == list(range(1, total + 1))  # log_every = 1
        assert all(np.isfinite(p[1]) and p[1] > 0 for p in st["loss_curve"])
        assert st["wall_s"] > 0 and st["pending"] == []
    assert record["scaling_factor"] > 0 and record["unet_params"] > 0 and record["text_encoder_params"] > 0
    assert set(record["versions"]) == {"torch", "diffusers", "transformers"}
    stage_walls = [s["wall_s"] for s in record["stages"].values()]
    assert record["total_wall_s"] == pytest.approx(sum(stage_walls), abs=0.01)
    leftovers = [p for p in trained.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []  # atomic writes leave nothing behind


def test_export_folder_loads_and_generates(trained: Path) -> None:
    folder = trained / "model"
    assert verify_sha256_manifest(folder) == []
    sums = (folder / SHA256_MANIFEST).read_text()
    assert all(f"{sha256_file(folder / w)}  {w}" in sums for w in WEIGHTS)
    from safetensors.torch import load_file

    assert {t.dtype for t in load_file(str(folder / WEIGHTS[0])).values()} == {torch.float16}
    world = arch.read_world(folder)
    assert world["caption_order"] == TINY.caption_order and world["image_size"] == TINY.image_size
    record = json.loads((folder / "training_record.json").read_text())
    assert record["exported_from"] == "ema" and record["stages"]["unet"]["steps_done"] == TINY.unet_steps

    pipe = load_model(str(folder))
    assert type(pipe).__name__ == "StableDiffusionPipeline" and pipe.safety_checker is None
    assert {m.dtype for m in (pipe.unet, pipe.text_encoder, pipe.vae)} == {torch.float32}
    assert type(pipe.scheduler).__name__ == "DDIMScheduler"
    assert pipe.tokenizer.model_max_length == TINY.context_length
    assert pipe.vae.config.scaling_factor == pytest.approx(record["scaling_factor"], rel=1e-6)
    comps = components_of(pipe)
    assert comps.native_resolution == TINY.image_size and comps.vae_scale_factor == TINY.vae_factor

    def draw(seed: int) -> np.ndarray:
        g = torch.Generator().manual_seed(seed)
        return pipe("top left, a red star", num_inference_steps=2, generator=g, output_type="np").images

    a, b, c = draw(0), draw(0), draw(1)
    assert a.shape == (1, TINY.image_size, TINY.image_size, 3) and np.isfinite(a).all()
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_exported_weights_are_the_ema_weights(trained: Path) -> None:
    ckpt = torch.load(trained / "ckpt_unet.pt", weights_only=True)
    pipe = load_model(str(trained / "model"))
    name = "conv_in.weight"
    ema = ckpt["ema"][f"unet.{name}"]
    assert torch.equal(pipe.unet.state_dict()[name], ema.half().float())
    assert not torch.equal(ckpt["unet"][name], ema)  # EMA lags the raw weights


def test_a_run_split_into_sittings_exports_the_same_weights(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "split"
    calls = 0
    while not (out / "model" / SHA256_MANIFEST).is_file():
        train(out, "all", config=TINY if calls == 0 else None, steps_this_call=2)
        calls += 1
        assert calls < 10
    assert calls == 3  # 2 + 1 + 3 steps, two per sitting
    for w in WEIGHTS:
        assert sha256_file(out / "model" / w) == sha256_file(trained / "model" / w), w
    a = json.loads((trained / "training_record.json").read_text())["stages"]
    b = json.loads((out / "training_record.json").read_text())["stages"]
    for stage in a:
        assert [p[:2] for p in a[stage]["loss_curve"]] == [p[:2] for p in b[stage]["loss_curve"]], stage


def test_every_baseline_method_runs_on_the_toy_model_unchanged(trained: Path, tmp_path: Path) -> None:
    @dataclass
    class ToyConcept:
        id: str
        class_noun: str
        images: list[Path]
        kind: str = "object"
        masks: list[Path] | None = None
        prompts: list[str] = field(default_factory=lambda: ["a {concept} on a grass background"])

    paths = []
    for i in range(3):
        scene = Scene("star", "red", "snow", "center", 0.5, pattern="stripes", seed=i)
        paths.append(tmp_path / f"{i}.png")
        render(scene, 32).save(paths[-1])
    concept = ToyConcept("striped-star", "star", paths)
    pipe = load_model(str(trained / "model"))
    for name in baselines.list_methods():
        method = baselines.get_method(name)
        cfg: dict[str, Any] = {}
        if name != "base":
            cfg.update(steps=2, batch_size=2, eval_samples=2)
        if name == "custom-diffusion":
            cfg.update(num_class_images=2, class_generation={"steps": 2, "guidance": 5.0, "seed": 0})
        art = method.fit(concept, pipe, toy_config(name, **cfg), seed=0, progress=False)
        custom = method.load(art, pipe)
        prompt = method.render("top left, a {concept} on a grass background", concept)
        out = custom.generate([prompt], [0], steps=2, guidance=5.0, return_latents=True)
        side = TINY.latent_size
        assert out.latents is not None and out.latents.shape == (1, 4, side, side), name
        assert torch.isfinite(out.latents).all(), name
        assert out.images[0].size == (TINY.image_size, TINY.image_size), name


def test_other_settings_in_the_same_folder_are_refused(trained: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="text_hidden"):
        Run(trained, TINY.replace(text_hidden=32, text_heads=2))
    Run(trained, TINY.replace(unet_steps=5))  # step counts may grow (to train longer)
    Run(trained, TINY)
    with pytest.raises(RuntimeError, match="'vae' stage has not finished"):
        train(tmp_path / "fresh", "decoder", config=TINY)
    with pytest.raises(ValueError, match="unknown stage"):
        train(tmp_path / "fresh", "everything", config=TINY)


def test_command_line_runs_stage_by_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "cli")
    assert main(["--out", out, "--preset", "tiny", "--stage", "vae", "--threads", "1"]) == 0
    assert "decoder: 1/1 steps" in capsys.readouterr().out
    assert not (tmp_path / "cli" / "model").exists()
    assert main(["--out", out, "--stage", "unet", "--threads", "1", "--minutes", "5", "--device", "cpu"]) == 0
    assert (tmp_path / "cli" / "model" / "model_index.json").is_file()
    assert json.loads((tmp_path / "cli" / "training_record.json").read_text())["unet_device"] == "cpu"
    assert main(["--out", out, "--preset", "tiny", "--set", "text_layers=2", "--threads", "1"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_training_data_and_captions_follow_the_world_rules() -> None:
    cfg = TINY.replace(dataset_size=400)
    scenes = dataset_scenes(cfg)
    assert len(scenes) == 400 and scenes == dataset_scenes(cfg)
    assert not any(is_held_out(s) for s in scenes)
    patterned = [s for s in scenes if s.pattern is not None]
    assert all(
        s.pattern in PRETRAIN_PATTERNS and (s.shape, s.pattern) not in RESERVED_PAIRS for s in patterned
    )
    assert (
        0.3 < len(patterned) / len(scenes) < 0.6
    )  # pattern_prob 0.5 (a shape with no allowed pattern wears none)
    rng = np.random.default_rng(0)
    texts = [training_caption(s, rng, cfg) for s in scenes]
    assert 0.05 < sum(t == "" for t in texts) / len(texts) < 0.16  # uncond_prob 0.1
    full = [caption(s, order=cfg.caption_order) for s in scenes]
    assert 0.4 < sum(t == f for t, f in zip(texts, full, strict=True)) / len(texts) < 0.65
    assert all(t == "" or s.shape in t for t, s in zip(texts, scenes, strict=True))
    tok = CaptionTokenizer(arch.build_tokenizer(cfg))
    ids = tok(texts[:8])
    assert ids.shape == (8, cfg.context_length) and int(ids[0, 0]) == arch.CLIP_BOS
    with pytest.raises(ValueError, match="tokens; the context is"):
        tok(["a red star " * 20])


def test_default_export_fits_the_size_budget(tmp_path: Path) -> None:
    cfg = PRESETS["default"]
    assert cfg.latent_size == 16 and cfg.image_size == 32 and cfg.caption_order == "position_first"
    modules = (arch.build_vae(cfg), arch.build_text_encoder(cfg), arch.build_unet(cfg))
    folder = arch.export_pipeline(tmp_path / "model", *modules, cfg, {"seed": cfg.seed})
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert total <= 25_000_000, f"the default model's export takes {total:,} bytes (aim: <= 25 MB)"
    params = sum(sum(p.numel() for p in m.parameters()) for m in modules)
    assert total > 2 * params  # float16 storage: two bytes a weight, plus tokenizer and configs


def test_bad_settings_raise_naming_the_field() -> None:
    with pytest.raises(ValueError, match="vae_channels"):
        BaseModelConfig(vae_factor=4)
    with pytest.raises(ValueError, match="divisible by the UNet"):
        BaseModelConfig(image_size=20)
    with pytest.raises(ValueError, match="caption_order"):
        BaseModelConfig(caption_order="middle")
    with pytest.raises(ValueError, match="unknown settings"):
        BaseModelConfig().replace(colour="red")
    with pytest.raises(ValueError, match="beta_schedule"):
        BaseModelConfig(beta_schedule="cosine")
    with pytest.raises(ValueError, match="beta_start < beta_end"):
        BaseModelConfig(beta_start=0.02, beta_end=0.01)
    with pytest.raises(ValueError, match="timestep_spacing"):
        BaseModelConfig(timestep_spacing="linspace")
    assert BaseModelConfig.from_dict(TINY.to_dict()) == TINY


def test_default_noise_schedule_is_sd15_and_another_one_reaches_the_exported_scheduler(
    tmp_path: Path,
) -> None:
    from baselines.sd15 import SD15_SCHEDULER_CONFIG

    default = BaseModelConfig().scheduler_config()
    assert {k: default[k] for k in SD15_SCHEDULER_CONFIG} == SD15_SCHEDULER_CONFIG
    assert default["timestep_spacing"] == "leading"  # diffusers' default spacing, i.e. SD-1.5's sampling
    # An older run folder's config (saved before the schedule fields existed) reads as SD-1.5's schedule.
    old = {k: v for k, v in TINY.to_dict().items() if not k.startswith(("beta_", "timestep_"))}
    assert BaseModelConfig.from_dict(old) == TINY

    cfg = TINY.replace(beta_schedule="linear", beta_start=1e-4, beta_end=0.02, timestep_spacing="trailing")
    sched = arch.noise_scheduler(cfg)
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float32)
    torch.testing.assert_close(sched.alphas_cumprod, torch.cumprod(1.0 - betas, 0))
    train(tmp_path, "all", config=cfg)
    pipe = load_model(str(tmp_path / "model"))
    assert pipe.scheduler.config.beta_schedule == "linear" and pipe.scheduler.config.beta_end == 0.02
    pipe.scheduler.set_timesteps(4)
    assert pipe.scheduler.timesteps.tolist() == [999, 749, 499, 249]  # trailing spacing
