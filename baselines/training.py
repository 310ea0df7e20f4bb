"""The one training loop every built-in method uses.

Per optimizer step: ``grad_accum`` micro-batches of ``batch_size`` instance samples (plus as many class
samples with prior preservation). A sample is an instance photo (random horizontal flip), a latent
drawn from its cached VAE posterior, a prompt drawn uniformly from the method's rendered templates,
t ~ U{0..T-1} and ε ~ N(0, I). The loss is the ε-MSE (v-MSE for v-prediction models), optionally
weighted by the soft foreground mask as in Infusion (mean over all elements, i.e. normalised by the
full area), plus ``prior_loss_weight`` × the class-image MSE. All randomness comes from one CPU
generator seeded by ``seed``, so a run is reproducible and device-independent in its draws.

Mixed precision: ``fp16``/``bf16`` autocast on CUDA (GradScaler for fp16); fp32 elsewhere. Trainable
tensors stay fp32. Checkpoints (trainables, optimizer, LR schedule, scaler, generator, losses) are
written atomically every ``checkpoint_every`` steps, and at the last step when a longer run of the same training
may follow (``keep_last``: the next rung of a trajectory); a run resumes from the latest one.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from baselines.data import LatentSet
from baselines.pipeline import CustomizedPipeline
from benchmark.io import atomic_write

logger = logging.getLogger(__name__)

PRECISIONS = ("no", "fp16", "bf16")
_CKPT = re.compile(r"^step-(\d{6,})\.pt$")
KEEP_LAST = ".keep-last-step"  # in a fit's work dir: a longer fit of the same run may follow this one


@dataclass(frozen=True)
class TrainConfig:
    """The loop's settings, read from a resolved method config."""

    steps: int
    batch_size: int
    grad_accum: int
    lr: float
    scale_lr: bool
    lr_warmup_steps: int
    weight_decay: float
    adam_betas: tuple[float, float]
    adam_eps: float
    max_grad_norm: float | None
    mixed_precision: str
    gradient_checkpointing: bool
    checkpoint_every: int
    use_mask: bool
    prior_loss_weight: float
    eval_samples: int

    @property
    def effective_lr(self) -> float:
        """``lr`` × batch × accumulation when ``scale_lr`` (diffusers' ``--scale_lr``)."""
        return self.lr * (self.batch_size * self.grad_accum if self.scale_lr else 1)

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrainConfig:
        """Raises ``ValueError`` naming a missing or out-of-range key."""
        names = [f.name for f in cls.__dataclass_fields__.values()]
        missing = [n for n in names if n not in cfg]
        if missing:
            raise ValueError(f"training config is missing {missing}")
        values = {n: cfg[n] for n in names}
        values["adam_betas"] = tuple(float(b) for b in cfg["adam_betas"])
        tc = cls(**values)
        checks = {
            "steps": tc.steps >= 0,
            "batch_size": tc.batch_size >= 1,
            "grad_accum": tc.grad_accum >= 1,
            "lr": tc.lr > 0,
            "lr_warmup_steps": tc.lr_warmup_steps >= 0,
            "weight_decay": tc.weight_decay >= 0,
            "adam_betas": len(tc.adam_betas) == 2 and all(0 <= b < 1 for b in tc.adam_betas),
            "max_grad_norm": tc.max_grad_norm is None or tc.max_grad_norm > 0,
            "mixed_precision": tc.mixed_precision in PRECISIONS,
            "checkpoint_every": tc.checkpoint_every >= 0,
            "prior_loss_weight": tc.prior_loss_weight >= 0,
            "eval_samples": tc.eval_samples >= 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"training config: invalid {', '.join(f'{k}={getattr(tc, k)!r}' for k in bad)}")
        return tc


@dataclass
class TrainingData:
    """Instance latents and prompts (and optionally class latents and prompts for prior preservation)."""

    instance: LatentSet
    prompts: list[str]
    hflip: float
    scaling_factor: float
    prior: LatentSet | None = None
    prior_prompts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ValueError("training data needs at least one prompt")
        if not 0.0 <= self.hflip <= 1.0:
            raise ValueError(f"hflip must be a probability in [0, 1], got {self.hflip}")
        if self.prior is not None and not self.prior_prompts:
            raise ValueError("prior-preservation data needs class prompts")


@dataclass
class Batch:
    latents: torch.Tensor
    noise: torch.Tensor
    timesteps: torch.Tensor
    prompts: list[str]
    masks: torch.Tensor | None
    n_instance: int


@dataclass
class TrainResult:
    """Per-step mean losses, eval losses before/after (``nan`` when disabled), steps run and where
    the run resumed from (0 = fresh)."""

    losses: list[float]
    eval_before: float
    eval_after: float
    steps: int
    resumed_from: int = 0


def _draw(
    data: LatentSet, prompts: list[str], n: int, hflip: float, g: torch.Generator, use_mask: bool
) -> tuple[torch.Tensor, list[str], torch.Tensor | None]:
    idx = torch.randint(len(data), (n,), generator=g)
    flip = (torch.rand(n, generator=g) < hflip).long()
    mean, std = data.mean[idx, flip], data.std[idx, flip]
    latents = mean + std * torch.randn(mean.shape, generator=g)
    pick = torch.randint(len(prompts), (n,), generator=g)
    masks = data.masks[idx, flip] if use_mask and data.masks is not None else None
    return latents, [prompts[int(i)] for i in pick], masks


def sample_batch(data: TrainingData, cfg: TrainConfig, g: torch.Generator, num_timesteps: int) -> Batch:
    """One micro-batch (CPU tensors): instance rows first, then class rows."""
    latents, prompts, masks = _draw(data.instance, data.prompts, cfg.batch_size, data.hflip, g, cfg.use_mask)
    if data.prior is not None:
        p_lat, p_prompts, _ = _draw(data.prior, data.prior_prompts, cfg.batch_size, data.hflip, g, False)
        latents, prompts = torch.cat([latents, p_lat]), prompts + p_prompts
    latents = latents * data.scaling_factor
    noise = torch.randn(latents.shape, generator=g)
    timesteps = torch.randint(0, num_timesteps, (latents.shape[0],), generator=g)
    return Batch(latents, noise, timesteps, prompts, masks, cfg.batch_size)


def eval_batch(data: TrainingData, cfg: TrainConfig, seed: int, num_timesteps: int) -> Batch | None:
    """A fixed held batch for before/after losses: images in order (unflipped), the first prompts,
    timesteps evenly spread over the schedule, noise from a generator derived from ``seed``."""
    n = cfg.eval_samples
    if n == 0:
        return None
    g = torch.Generator().manual_seed(seed + 104729)
    idx = torch.arange(n) % len(data.instance)
    mean, std = data.instance.mean[idx, 0], data.instance.std[idx, 0]
    latents = (mean + std * torch.randn(mean.shape, generator=g)) * data.scaling_factor
    noise = torch.randn(latents.shape, generator=g)
    timesteps = ((torch.arange(n) + 0.5) * num_timesteps / n).long().clamp(max=num_timesteps - 1)
    prompts = [data.prompts[i % len(data.prompts)] for i in range(n)]
    masks = data.instance.masks[idx, 0] if cfg.use_mask and data.instance.masks is not None else None
    return Batch(latents, noise, timesteps, prompts, masks, n)


class Trainer:
    """Optimizer, schedule, precision and checkpoint state around a pipeline's trainable tensors."""

    def __init__(
        self, pipe: CustomizedPipeline, params: dict[str, torch.Tensor], cfg: TrainConfig, *, seed: int
    ) -> None:
        trainable = [p for p in params.values() if p.requires_grad]
        if not trainable:
            raise ValueError("nothing to train: no tensor requires grad")
        self.pipe, self.params, self.cfg = pipe, params, cfg
        self.device = pipe.device
        self.scheduler = pipe.training_scheduler
        self.num_timesteps = pipe.num_train_timesteps
        self.optimizer = torch.optim.AdamW(
            trainable,
            lr=cfg.effective_lr,
            betas=cfg.adam_betas,
            eps=cfg.adam_eps,
            weight_decay=cfg.weight_decay,
        )
        warmup = cfg.lr_warmup_steps
        self.lr_schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, (s + 1) / warmup) if warmup else 1.0
        )
        cuda = self.device.type == "cuda"
        self.autocast_dtype = (
            {"fp16": torch.float16, "bf16": torch.bfloat16}.get(cfg.mixed_precision) if cuda else None
        )
        self.scaler = torch.amp.GradScaler("cuda") if cuda and cfg.mixed_precision == "fp16" else None
        self.generator = torch.Generator().manual_seed(seed)
        self.step = 0
        self.losses: list[float] = []

    def _autocast(self) -> Any:
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.autocast_dtype)

    def inputs(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The noised latents, timesteps and regression target of a batch, on the trainer's device."""
        dev = self.device
        latents, noise = batch.latents.to(dev), batch.noise.to(dev)
        t = batch.timesteps.to(dev)
        noisy = self.scheduler.add_noise(latents, noise, t).to(self.pipe.dtype)
        if self.scheduler.config.prediction_type == "v_prediction":
            target = self.scheduler.get_velocity(latents, noise, t)
        else:
            target = noise
        return noisy, t, target

    def loss(self, batch: Batch) -> torch.Tensor:
        """Weighted ε-MSE of a batch (differentiable)."""
        noisy, t, target = self.inputs(batch)
        with self._autocast():
            pred = self.pipe.predict(noisy, t, batch.prompts)
        return self.loss_of(pred, target, batch)

    def loss_of(self, pred: torch.Tensor, target: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The loss of a batch from the model's prediction and the target (:meth:`inputs`)."""
        dev = self.device
        pred, target = pred.float(), target.float()
        n = batch.n_instance
        diff = pred[:n] - target[:n]
        if batch.masks is not None:
            diff = diff * batch.masks.to(dev, diff.dtype)
        loss = diff.pow(2).mean()
        if pred.shape[0] > n:
            loss = loss + self.cfg.prior_loss_weight * (pred[n:] - target[n:]).pow(2).mean()
        return loss

    @torch.no_grad()
    def evaluate(self, batch: Batch | None) -> float:
        """Loss on a fixed batch (``nan`` if ``None``)."""
        if batch is None:
            return math.nan
        return float(self.loss(batch))

    def train_step(self, data: TrainingData) -> float:
        """One optimizer step over ``grad_accum`` micro-batches. Returns the mean micro-batch loss."""
        total = 0.0
        for _ in range(self.cfg.grad_accum):
            batch = sample_batch(data, self.cfg, self.generator, self.num_timesteps)
            loss = self.loss(batch) / self.cfg.grad_accum
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
            else:
                loss.backward()
            total += float(loss.detach())
        return self.apply_gradients(total)

    def apply_gradients(self, total: float) -> float:
        """Clip, step the optimizer and the schedule on the accumulated gradients; log ``total``."""
        trainable = [p for p in self.params.values() if p.requires_grad]
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        if self.cfg.max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainable, self.cfg.max_grad_norm)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.lr_schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.losses.append(total)
        return total

    # -- checkpoints ------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "params": {k: v.detach().to("cpu").clone() for k, v in self.params.items()},
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "generator": self.generator.get_state(),
            "losses": list(self.losses),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = set(self.params) ^ set(state["params"])
        if missing:
            raise ValueError(f"checkpoint does not match the trainable tensors: {sorted(missing)[:5]}")
        with torch.no_grad():
            for k, v in state["params"].items():
                self.params[k].copy_(v.to(self.params[k].device, self.params[k].dtype))
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.step = int(state["step"])
        self.losses = [float(x) for x in state["losses"]]


def latest_checkpoint(directory: Path) -> Path | None:
    """The checkpoint with the highest step in ``directory`` (``step-NNNNNN.pt``), if any."""
    if not directory.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _CKPT.match(p.name))]
    return max(found)[1] if found else None


def checkpoint_step(directory: Path) -> int:
    """The step of the latest checkpoint in ``directory`` (0: none)."""
    latest = latest_checkpoint(directory)
    m = _CKPT.match(latest.name) if latest is not None else None
    return int(m.group(1)) if m else 0


def save_checkpoint(directory: Path, state: dict[str, Any]) -> Path:
    """Write ``step-NNNNNN.pt`` atomically (temp file + rename) and delete older checkpoints."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"step-{state['step']:06d}.pt"
    atomic_write(path, lambda tmp: torch.save(state, tmp))
    for old in directory.iterdir():
        m = _CKPT.match(old.name)
        if m and old != path:
            old.unlink()
    return path


@contextmanager
def gradient_checkpointing(unet: Any, enabled: bool) -> Iterator[None]:
    """Enable UNet gradient checkpointing for the block and restore the previous setting."""
    before = bool(getattr(unet, "is_gradient_checkpointing", False))
    if enabled and not before:
        unet.enable_gradient_checkpointing()
    try:
        yield
    finally:
        if enabled and not before:
            unet.disable_gradient_checkpointing()


def train(
    pipe: CustomizedPipeline,
    params: dict[str, torch.Tensor],
    data: TrainingData,
    cfg: TrainConfig,
    *,
    seed: int,
    progress: bool = True,
    checkpoint_dir: Path | None = None,
    resume_key: str = "",
    keep_last: bool = False,
) -> TrainResult:
    """Train ``params`` (the tensors ``pipe`` reads) for ``cfg.steps`` optimizer steps.

    Args:
        checkpoint_dir: where checkpoints go; a run resumes from the latest one there.
        resume_key: identifies the run (data, method, config minus ``steps``); a checkpoint written
            under another key is an error rather than silently mixed in.
        keep_last: a longer fit of the same run may follow (the next rung of a trajectory): when this
            fit ends between checkpoints, leave one at its last step too, unless a later one is there.

    Returns:
        :class:`TrainResult`.

    Raises:
        ValueError: a checkpoint from a different run, or a bad config.
    """
    from tqdm.auto import tqdm

    trainer = Trainer(pipe, params, cfg, seed=seed)
    held = eval_batch(data, cfg, seed, trainer.num_timesteps)
    resumed = 0
    eval_before = math.nan
    ckpt = latest_checkpoint(checkpoint_dir) if checkpoint_dir is not None and cfg.checkpoint_every else None
    with pipe.session(), gradient_checkpointing(pipe.unet, cfg.gradient_checkpointing):
        if ckpt is not None:
            state = torch.load(ckpt, map_location="cpu", weights_only=True)
            if state.get("resume_key") != resume_key:
                raise ValueError(
                    f"checkpoint {ckpt} belongs to a different run (data, method or config changed)"
                )
            if int(state["step"]) <= cfg.steps:
                trainer.load_state_dict(state)
                eval_before = float(state["eval_before"])
                resumed = trainer.step
                logger.info("resumed from %s (step %d)", ckpt, resumed)
        if resumed == 0:
            eval_before = trainer.evaluate(held)
        bar = tqdm(total=cfg.steps, initial=trainer.step, desc="train", disable=not progress)
        while trainer.step < cfg.steps:
            loss = trainer.train_step(data)
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            if (
                checkpoint_dir is not None
                and cfg.checkpoint_every
                and trainer.step % cfg.checkpoint_every == 0
            ):
                state = trainer.state_dict()
                state.update(resume_key=resume_key, eval_before=eval_before)
                save_checkpoint(checkpoint_dir, state)
        bar.close()
        if (
            keep_last
            and checkpoint_dir is not None
            and cfg.checkpoint_every
            and trainer.step > resumed
            and trainer.step % cfg.checkpoint_every
            and checkpoint_step(checkpoint_dir) < trainer.step
        ):
            # the next, longer fit of this run resumes here instead of from an earlier step
            state = trainer.state_dict()
            state.update(resume_key=resume_key, eval_before=eval_before)
            save_checkpoint(checkpoint_dir, state)
        eval_after = trainer.evaluate(held)
    return TrainResult(trainer.losses, eval_before, eval_after, trainer.step, resumed)
