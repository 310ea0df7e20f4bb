"""Train the toy base model (SD architecture at small size) on rendered scenes, reproducibly and resumably.

Stages, each checkpointed atomically in the run folder and resumed from its latest checkpoint:

1. ``vae`` — the full ``AutoencoderKL`` (L1 + MSE + edge loss, a tiny KL term);
2. ``decoder`` — a decoder-only fine-tune with the encoder frozen (sharpens shapes, per MACHINE.md);
3. ``unet`` — the UNet and the CLIP text encoder jointly on the frozen VAE's latents (ε-prediction,
   SD-1.5 noise schedule, caption dropout for guidance), with an EMA copy;

then ``export``: the EMA weights as a ``StableDiffusionPipeline`` folder (DDIM scheduler config, no
safety checker) with ``toy_world.json``, ``training_record.json`` and ``SHA256SUMS``.

Every step's randomness comes from ``(seed, stage, step)``, so a run split over several sittings
(``--minutes``) ends with the same weights as an uninterrupted one. The record
(``training_record.json``) keeps the settings, seed, steps, loss curves and wall time.

Command line::

    python -m benchmark.toy.train_base --out DIR --stage vae|decoder|unet|export|all [--minutes M]
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from benchmark.io import atomic_write_json
from benchmark.toy import architecture as arch
from benchmark.toy.config import PRESETS, BaseModelConfig
from benchmark.toy.data import (
    CaptionTokenizer,
    dataset_scenes,
    load_or_render,
    to_model_input,
    training_caption,
)
from benchmark.toy.io import atomic_numpy_save, atomic_torch_save, load_torch

logger = logging.getLogger(__name__)

STAGES = ("vae", "decoder", "unet")
CLI_STAGES = ("vae", "decoder", "unet", "export", "all")
RECORD = "training_record.json"
CONFIG = "config.json"
_STAGE_IDS = {"vae": 1, "decoder": 2, "unet": 3}
_STEP_FIELDS = {"vae_steps", "decoder_steps", "unet_steps"}


# ----------------------------------------------------------------------------------------------------
# Bookkeeping


@dataclass
class StageRecord:
    """Progress of one stage: steps, the loss curve ``[[step, mean loss, wall seconds], ...]`` (a point
    every ``log_every`` steps and at the end; ``pending`` holds the losses since the last point), wall time."""

    total_steps: int
    steps_done: int = 0
    wall_s: float = 0.0
    loss_curve: list[list[float]] = field(default_factory=list)
    pending: list[float] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.steps_done >= self.total_steps


class Budget:
    """This call's allowance: wall minutes and/or a number of optimisation steps (``None``: unlimited)."""

    def __init__(self, minutes: float | None = None, steps: int | None = None) -> None:
        if minutes is not None and minutes <= 0:
            raise ValueError(f"--minutes must be positive, got {minutes}")
        if steps is not None and steps < 1:
            raise ValueError(f"steps per call must be positive, got {steps}")
        self.deadline = None if minutes is None else time.monotonic() + 60.0 * minutes
        self.steps_left = steps

    def spend_step(self) -> None:
        if self.steps_left is not None:
            self.steps_left -= 1

    @property
    def exhausted(self) -> bool:
        out_of_steps = self.steps_left is not None and self.steps_left <= 0
        return out_of_steps or (self.deadline is not None and time.monotonic() >= self.deadline)


def _step_generators(
    cfg: BaseModelConfig, stage: str, step: int
) -> tuple[torch.Generator, np.random.Generator]:
    key = [cfg.seed, _STAGE_IDS[stage], step]
    torch_seed = int(np.random.SeedSequence(key).generate_state(1, np.uint64)[0] >> np.uint64(1))
    return torch.Generator().manual_seed(torch_seed), np.random.default_rng(key)


def _run_stage(
    name: str,
    record: StageRecord,
    step_fn: Callable[[int], float],
    save_fn: Callable[[], None],
    budget: Budget,
    cfg: BaseModelConfig,
) -> bool:
    """Run ``step_fn(step)`` until the stage is finished or the budget is spent, logging the mean loss every
    ``cfg.log_every`` steps and saving every ``cfg.checkpoint_every`` steps and on exit.

    Returns:
        Whether the stage finished.
    """
    start, wall_before = time.perf_counter(), record.wall_s
    while not record.finished and not budget.exhausted:
        record.pending.append(step_fn(record.steps_done))
        record.steps_done += 1
        budget.spend_step()
        record.wall_s = wall_before + time.perf_counter() - start
        stopping = record.finished or budget.exhausted
        if len(record.pending) >= cfg.log_every or record.finished:
            mean = float(np.mean(record.pending))
            record.loss_curve.append([record.steps_done, mean, round(record.wall_s, 3)])
            logger.info("%s step %d/%d loss %.4f", name, record.steps_done, record.total_steps, mean)
            record.pending = []
        if record.steps_done % cfg.checkpoint_every == 0 or stopping:
            save_fn()
    if record.steps_done == 0 and record.total_steps == 0:
        save_fn()
    return record.finished


class Run:
    """A training run folder: its settings, record and checkpoint paths.

    Raises (on construction):
        ValueError: the folder was started with other settings (only ``*_steps`` may change).
    """

    def __init__(self, out_dir: str | Path, cfg: BaseModelConfig | None) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        saved_path = self.dir / CONFIG
        if saved_path.is_file():
            import json

            saved = BaseModelConfig.from_dict(json.loads(saved_path.read_text(encoding="utf-8")))
            if cfg is None:
                cfg = saved
            diff = sorted(k for k, v in cfg.to_dict().items() if saved.to_dict()[k] != v)
            if set(diff) - _STEP_FIELDS:
                raise ValueError(
                    f"{self.dir}: this run was started with other settings ({', '.join(diff)} differ); "
                    "use a new --out folder or the saved settings"
                )
            if diff:
                logger.warning(
                    "%s: step counts changed (%s); the learning-rate schedule follows the new totals",
                    self.dir,
                    ", ".join(diff),
                )
        self.cfg = cfg or PRESETS["default"]
        atomic_write_json(saved_path, self.cfg.to_dict())
        self.record = self._load_record()

    def ckpt(self, stage: str) -> Path:
        return self.dir / f"ckpt_{stage}.pt"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def model_dir(self) -> Path:
        return self.dir / "model"

    def _load_record(self) -> dict[str, Any]:
        import json

        path = self.dir / RECORD
        rec: dict[str, Any] = {}
        if path.is_file():
            rec = json.loads(path.read_text(encoding="utf-8"))
        rec.update(
            {
                "seed": self.cfg.seed,
                "config": self.cfg.to_dict(),
                "versions": _versions(),
                "torch_threads": torch.get_num_threads(),
            }
        )
        rec.setdefault("stages", {})
        return rec

    def stage_record(self, stage: str, ckpt: dict[str, Any] | None) -> StageRecord:
        total = int(getattr(self.cfg, f"{stage}_steps"))
        rec = StageRecord(**ckpt["record"]) if ckpt is not None else StageRecord(total_steps=total)
        rec.total_steps = total
        return rec

    def save_record(
        self, stage: str | None = None, stage_rec: StageRecord | None = None, **extra: Any
    ) -> None:
        if stage is not None and stage_rec is not None:
            self.record["stages"][stage] = asdict(stage_rec)
        self.record.update(extra)
        self.record["total_wall_s"] = round(sum(s["wall_s"] for s in self.record["stages"].values()), 3)
        atomic_write_json(self.dir / RECORD, self.record)

    def load_ckpt(self, stage: str) -> dict[str, Any] | None:
        path = self.ckpt(stage)
        return load_torch(path) if path.is_file() else None


def _versions() -> dict[str, str]:
    import diffusers
    import transformers

    return {
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of ``base`` at ``total``."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _param_count(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ----------------------------------------------------------------------------------------------------
# VAE stages


def _vae_loss(rec: torch.Tensor, x: torch.Tensor, cfg: BaseModelConfig) -> torch.Tensor:
    l1 = (rec - x).abs().mean()
    mse = ((rec - x) ** 2).mean()
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    edge = (dx(rec) - dx(x)).abs().mean() + (dy(rec) - dy(x)).abs().mean()
    return l1 + mse + cfg.edge_weight * edge


def train_vae_stage(run: Run, budget: Budget, *, decoder_only: bool) -> bool:
    """Train the VAE (``decoder_only=False``: stage ``vae``) or fine-tune its decoder (stage ``decoder``,
    starting from the finished ``vae`` stage).

    Returns:
        Whether the stage finished.

    Raises:
        RuntimeError: the decoder stage is asked for before the ``vae`` stage finished.
    """
    cfg, stage = run.cfg, "decoder" if decoder_only else "vae"
    vae = arch.build_vae(cfg)
    ckpt = run.load_ckpt(stage)
    if ckpt is None and decoder_only:
        prev = run.load_ckpt("vae")
        if prev is None or not StageRecord(**prev["record"]).finished:
            raise RuntimeError(f"{run.dir}: the 'vae' stage has not finished; run --stage vae first")
        vae.load_state_dict(prev["model"])
    elif ckpt is not None:
        vae.load_state_dict(ckpt["model"])
    if decoder_only:
        vae.requires_grad_(False)
        trainable = [*vae.decoder.parameters(), *vae.post_quant_conv.parameters()]
        for p in trainable:
            p.requires_grad_(True)
    else:
        trainable = list(vae.parameters())
    lr = cfg.decoder_lr if decoder_only else cfg.vae_lr
    opt = torch.optim.AdamW(trainable, lr=lr, weight_decay=0.0)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
    rec = run.stage_record(stage, ckpt)
    if rec.finished and ckpt is not None:
        return True
    images = load_or_render(cfg, run.data_dir)
    vae.train()
    pixels_per_image = 3 * cfg.image_size**2

    def step(i: int) -> float:
        g, _ = _step_generators(cfg, stage, i)
        idx = torch.randint(0, images.shape[0], (cfg.vae_batch,), generator=g)
        x = to_model_input(images[idx.numpy()])
        for group in opt.param_groups:
            group["lr"] = _lr(i, rec.total_steps, lr, min(100, rec.total_steps // 10))
        if decoder_only:
            with torch.no_grad():
                z = vae.encode(x).latent_dist.mode()
            loss = _vae_loss(vae.decode(z).sample, x, cfg)
        else:
            post = vae.encode(x).latent_dist
            kl = post.kl().sum() / (x.shape[0] * pixels_per_image)
            loss = _vae_loss(vae.decode(post.sample(generator=g)).sample, x, cfg) + cfg.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        opt.step()
        return float(loss.detach())

    def save() -> None:
        state = {"model": vae.state_dict(), "optimizer": opt.state_dict(), "record": asdict(rec)}
        atomic_torch_save(run.ckpt(stage), {**state, "stage": stage, "config": cfg.to_dict()})
        run.save_record(stage, rec, vae_params=_param_count(vae))

    return _run_stage(stage, rec, step, save, budget, cfg)


def final_vae(run: Run) -> tuple[Any, str]:
    """The finished VAE (after the decoder fine-tune) in eval mode, and the sha256 of its weights.

    Raises:
        RuntimeError: the ``decoder`` stage has not finished.
    """
    ckpt = run.load_ckpt("decoder")
    if ckpt is None or not StageRecord(**ckpt["record"]).finished:
        raise RuntimeError(f"{run.dir}: the VAE stages have not finished; run --stage vae first")
    vae = arch.build_vae(run.cfg)
    vae.load_state_dict(ckpt["model"])
    return vae.eval().requires_grad_(False), state_sha256(ckpt["model"])


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and values (independent of the file around it)."""
    import hashlib

    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


@torch.no_grad()
def encoded_latents(run: Run, vae: Any, vae_sha: str) -> tuple[torch.Tensor, float]:
    """Latent means of the whole dataset under the finished VAE (cached as float16 ``.npy``) and the
    scaling factor that gives them unit standard deviation."""
    import json

    lat_path, meta_path = run.data_dir / "latents.npy", run.data_dir / "latents.json"
    if lat_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("vae_sha256") == vae_sha and meta.get("n") == run.cfg.dataset_size:
            return torch.from_numpy(np.load(lat_path)).contiguous(), float(meta["scaling_factor"])
    images = load_or_render(run.cfg, run.data_dir)
    t0 = time.perf_counter()
    chunks = [
        vae.encode(to_model_input(images[s : s + 256])).latent_dist.mean.to(torch.float16)
        for s in range(0, images.shape[0], 256)
    ]
    # Contiguous (NCHW) storage: the encoder's output may be channels-last, and a convolution's rounding
    # depends on the layout, so a run that reads latents back from disk must see the same layout.
    latents = torch.cat(chunks).contiguous()
    scaling = float(1.0 / latents.float().std().clamp_min(1e-6))
    atomic_numpy_save(lat_path, latents.numpy())
    atomic_write_json(
        meta_path, {"vae_sha256": vae_sha, "n": run.cfg.dataset_size, "scaling_factor": scaling}
    )
    logger.info(
        "encoded %d latents in %.1f s (scaling factor %.4f)", len(latents), time.perf_counter() - t0, scaling
    )
    return latents, scaling


# ----------------------------------------------------------------------------------------------------
# UNet + text encoder stage


class EMA:
    """Exponential moving average of parameters (float32 shadows), with the usual warm-up of the decay."""

    def __init__(self, named: Iterable[tuple[str, torch.Tensor]], decay: float) -> None:
        self.decay = decay
        self.shadow = {n: p.detach().clone().float() for n, p in named}

    @torch.no_grad()
    def update(self, named: Iterable[tuple[str, torch.Tensor]], step: int) -> None:
        d = min(self.decay, (1.0 + step) / (10.0 + step))
        for n, p in named:
            self.shadow[n].mul_(d).add_(p.detach().float(), alpha=1.0 - d)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        missing = sorted(set(self.shadow) ^ set(state))
        if missing:
            raise ValueError(f"EMA state does not match the model (differing names: {missing[:5]} ...)")
        self.shadow = {k: v.clone().float() for k, v in state.items()}


def _named(unet: Any, text_encoder: Any) -> list[tuple[str, torch.Tensor]]:
    return [
        *(("unet." + n, p) for n, p in unet.named_parameters()),
        *(("text." + n, p) for n, p in text_encoder.named_parameters()),
    ]


def _apply_ema(ema_state: dict[str, torch.Tensor], unet: Any, text_encoder: Any) -> None:
    with torch.no_grad():
        for n, p in _named(unet, text_encoder):
            p.copy_(ema_state[n].to(p.dtype))


def _cpu_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu") for k, v in state.items()}


def train_unet_stage(run: Run, budget: Budget, device: str = "cpu") -> bool:
    """Train the UNet and text encoder jointly on the finished VAE's latents, with EMA.

    Batches, noise and timesteps are drawn on the CPU from the step's own generators whatever
    ``device`` computes the step, so a run may move between devices (the numerics of the step differ).

    Returns:
        Whether the stage finished.

    Raises:
        RuntimeError: the VAE stages have not finished.
    """
    cfg = run.cfg
    vae, vae_sha = final_vae(run)
    latents, scaling = encoded_latents(run, vae, vae_sha)
    unet, text_encoder = arch.build_unet(cfg), arch.build_text_encoder(cfg)
    ckpt = run.load_ckpt("unet")
    if ckpt is not None:
        if ckpt.get("vae_sha256") != vae_sha:
            raise RuntimeError(f"{run.ckpt('unet')}: trained on another VAE; delete it to retrain the UNet")
        unet.load_state_dict(ckpt["unet"])
        text_encoder.load_state_dict(ckpt["text_encoder"])
    unet.to(device)
    text_encoder.to(device)
    params = [*unet.parameters(), *text_encoder.parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.unet_lr, weight_decay=cfg.weight_decay)
    ema = EMA(_named(unet, text_encoder), cfg.ema_decay)
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        ema.load_state_dict({k: v.to(device) for k, v in ckpt["ema"].items()})
    rec = run.stage_record("unet", ckpt)
    if rec.finished and ckpt is not None:
        return True
    scenes = dataset_scenes(cfg)
    tok = CaptionTokenizer(arch.build_tokenizer(cfg))
    sched = arch.noise_scheduler(cfg)
    n_train = int(sched.config.num_train_timesteps)
    unet.train()
    text_encoder.train()

    def step(i: int) -> float:
        g, rng = _step_generators(cfg, "unet", i)
        idx = torch.randint(0, latents.shape[0], (cfg.unet_batch,), generator=g)
        z0 = (latents[idx].float() * scaling).contiguous()
        ids = tok([training_caption(scenes[int(j)], rng, cfg) for j in idx])
        noise = torch.randn(z0.shape, generator=g)
        t = torch.randint(0, n_train, (z0.shape[0],), generator=g)
        if device != "cpu":
            z0, ids, noise, t = (x.to(device) for x in (z0, ids, noise, t))
        for group in opt.param_groups:
            group["lr"] = _lr(i, rec.total_steps, cfg.unet_lr, cfg.unet_warmup)
        cond = text_encoder(ids)[0]
        pred = unet(sched.add_noise(z0, noise, t), t, encoder_hidden_states=cond).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        ema.update(_named(unet, text_encoder), i)
        return float(loss.detach())

    def save() -> None:
        optim = opt.state_dict()
        if device != "cpu":
            optim["state"] = {i: _cpu_state(st) for i, st in optim["state"].items()}
        state = {
            "unet": _cpu_state(unet.state_dict()),
            "text_encoder": _cpu_state(text_encoder.state_dict()),
            "optimizer": optim,
            "ema": _cpu_state(ema.state_dict()),
            "record": asdict(rec),
        }
        atomic_torch_save(
            run.ckpt("unet"),
            {**state, "vae_sha256": vae_sha, "scaling_factor": scaling, "config": cfg.to_dict()},
        )
        run.save_record(
            "unet",
            rec,
            unet_params=_param_count(unet),
            text_encoder_params=_param_count(text_encoder),
            scaling_factor=scaling,
            unet_device=device,
        )

    return _run_stage("unet", rec, step, save, budget, cfg)


# ----------------------------------------------------------------------------------------------------
# Export and orchestration


def export(run: Run, folder: str | Path | None = None) -> Path:
    """Export the finished model (EMA weights) as a pipeline folder (default ``<run>/model``).

    Returns:
        The folder.

    Raises:
        RuntimeError: the UNet stage has not finished.
    """
    ckpt = run.load_ckpt("unet")
    if ckpt is None or not StageRecord(**ckpt["record"]).finished:
        raise RuntimeError(f"{run.dir}: the 'unet' stage has not finished; nothing to export")
    vae, vae_sha = final_vae(run)
    if ckpt["vae_sha256"] != vae_sha:
        raise RuntimeError(f"{run.ckpt('unet')}: trained on another VAE than {run.ckpt('decoder')}")
    vae.register_to_config(scaling_factor=float(ckpt["scaling_factor"]))
    unet, text_encoder = arch.build_unet(run.cfg), arch.build_text_encoder(run.cfg)
    _apply_ema(ckpt["ema"], unet, text_encoder)
    target = Path(folder) if folder is not None else run.model_dir
    record = copy.deepcopy(run.record)
    record["exported_from"] = "ema"
    out = arch.export_pipeline(target, vae, text_encoder, unet, run.cfg, record)
    run.save_record(exported_to=str(out))
    return out


def train(
    out_dir: str | Path,
    stage: str = "all",
    *,
    config: BaseModelConfig | None = None,
    minutes: float | None = None,
    steps_this_call: int | None = None,
    export_to: str | Path | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Run (or continue) training stages in ``out_dir``.

    Args:
        out_dir: the run folder (checkpoints, cached data, record, ``model/``).
        stage: ``vae`` (VAE then decoder fine-tune), ``decoder``, ``unet`` (then export), ``export``
            or ``all``.
        config: settings for a new run; ``None`` uses the run's saved settings (or the default preset).
        minutes: wall-time budget for this call (stages checkpoint and stop when it runs out).
        steps_this_call: at most this many optimisation steps in this call (all stages together).
        export_to: where to export the pipeline (default ``<out_dir>/model``).
        device: where the UNet stage computes (the VAE stages always run on the CPU).

    Returns:
        The training record (as written to ``training_record.json``).

    Raises:
        ValueError: an unknown stage, or settings that disagree with the run's.
        RuntimeError: a stage whose inputs are not finished.
    """
    if stage not in CLI_STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {list(CLI_STAGES)}")
    run = Run(out_dir, config)
    budget = Budget(minutes, steps_this_call)
    todo: Sequence[str] = {
        "vae": ("vae", "decoder"),
        "decoder": ("decoder",),
        "unet": ("unet", "export"),
        "export": ("export",),
        "all": ("vae", "decoder", "unet", "export"),
    }[stage]
    for name in todo:
        if name == "export":
            export(run, export_to)
            continue
        done = (
            train_unet_stage(run, budget, device)
            if name == "unet"
            else train_vae_stage(run, budget, decoder_only=name == "decoder")
        )
        if not done:
            logger.info("stopped in stage %s (budget used); run again to continue", name)
            break
    return run.record


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    import json

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.train_base", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", required=True, help="run folder (checkpoints, data cache, record, model/)")
    parser.add_argument("--stage", default="all", choices=CLI_STAGES)
    parser.add_argument("--minutes", type=float, default=None, help="wall-time budget for this sitting")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="settings for a new run")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a setting")
    parser.add_argument("--export-to", default=None, help="export folder (default <out>/model)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument(
        "--device", default="cpu", help="device of the UNet stage (default cpu; the shipped model: cpu)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    try:
        cfg = None
        if args.preset or args.set:
            cfg = PRESETS[args.preset or "default"].replace(**_parse_set(args.set))
        record = train(
            args.out,
            args.stage,
            config=cfg,
            minutes=args.minutes,
            export_to=args.export_to,
            device=args.device,
        )
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for name, st in record.get("stages", {}).items():
        print(f"{name}: {st['steps_done']}/{st['total_steps']} steps, {st['wall_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
