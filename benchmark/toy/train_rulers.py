"""Train the toy rulers (:mod:`benchmark.toy.rulers`) on renders of the toy world, resumably.

``python -m benchmark.toy.train_rulers --which contrastive|ssl --out DIR --steps N [--minutes M]
[--seed S] [--export [DIR]]``

A run renders a bank of scenes once (cached in ``DIR``) from :func:`~benchmark.toy.rulers.sample_ruler_scenes`:
every shape, colour, background, position and all six patterns, but never a (shape, pattern) pair of
:data:`~benchmark.toy.rulers.HELD_OUT_PAIRS`. No label, oracle or oracle weight is read:

- ``contrastive``: each step pairs renders with captions written by :func:`benchmark.toy.world.caption`
  with a random subset of the optional parts, a random order and sometimes a prefix ("a photo of"),
  and minimises the symmetric InfoNCE loss with a learned temperature.
- ``ssl``: the bank holds two renders of each scene (the second with a fresh texture seed, size and
  jitter: two photos of one object); each step augments both (translation, brightness, contrast,
  blur, noise; no hue change, so colour stays informative) and minimises SimCLR's NT-Xent loss.

Every step's randomness comes from ``(seed, step)``, so a run resumed from its checkpoint gives the
same weights as an uninterrupted one. The training checkpoint (``ruler_train.pt``, with the optimizer),
the inference checkpoint (``ruler_checkpoint.pt``) and ``training_record.json`` are written every
``checkpoint_every`` steps and when a sitting ends; ``--export`` copies the finished model with its
record and ``SHA256SUMS`` into ``benchmark/toy/assets/rulers/<name>/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmark.io import atomic_write_json
from benchmark.toy.io import (
    atomic_numpy_save,
    atomic_torch_save,
    load_torch,
    replace_dir,
    write_sha256_manifest,
)
from benchmark.toy.render import render_batch
from benchmark.toy.rulers import (
    CAPTION_PREFIXES,
    CHECKPOINT,
    HELD_OUT_PAIRS,
    RULER_VERSION,
    ContrastiveRuler,
    RulerConfig,
    WordTokenizer,
    build_model,
    default_config,
    inference_state,
    sample_ruler_scenes,
    to_tensor,
)
from benchmark.toy.world import (
    BACKGROUNDS,
    CAPTION_ORDERS,
    MAX_JITTER,
    SIZE_RANGE,
    Scene,
    caption,
    world_description,
)

logger = logging.getLogger(__name__)

NAMES = {"contrastive": "toy-contrastive", "ssl": "toy-ssl"}
TRAIN_CHECKPOINT = "ruler_train.pt"
RECORD = "training_record.json"
_BANK = "ruler_bank_{which}_{seed}_{n}_{size}_bg{swap}.npy"
ASSETS_RULERS = Path(__file__).resolve().parent / "assets" / "rulers"


@dataclass
class RulerRecord:
    """What a training run did: the loss curve ``[[step, mean loss], ...]`` (a point every ``log_every``
    steps; ``pending`` holds the losses since the last point), wall time, seed, threads, what it saw."""

    name: str
    seed: int
    steps_done: int
    total_steps: int
    wall_s: float
    torch_threads: int
    n_params: int
    loss_curve: list[list[float]] = field(default_factory=list)
    pending: list[float] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    held_out_pairs: list[list[str]] = field(default_factory=list)
    training_data: str = ""
    version: int = RULER_VERSION


class SimCLR(nn.Module):
    """Training wrapper for ``toy-ssl``: the exported :class:`~benchmark.toy.rulers.ImageTower` plus the
    projection head that NT-Xent trains through (dropped at export)."""

    def __init__(self, cfg: RulerConfig) -> None:
        super().__init__()
        self.backbone = build_model(cfg)
        self.projector = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, cfg.proj_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projector(self.backbone(x))


def _training_data(cfg: RulerConfig) -> str:
    pairs = ", ".join(f"{s}+{p}" for s, p in HELD_OUT_PAIRS)
    seen = (
        f"{cfg.bank_size} rendered scenes ({cfg.image_size} px): every shape, colour, background and "
        f"position, {cfg.pattern_prob:.0%} of them wearing one of the six patterns, never the pairs {pairs}"
    )
    if cfg.which == "contrastive":
        return seen + "; captions from benchmark.toy.world.caption (random parts, order and prefix)"
    swap = f", another background with probability {cfg.swap_background_prob}"
    return seen + f"; two renders per scene (fresh texture seed, size, jitter{swap}); no captions, no labels"


# ----------------------------------------------------------------------------------------------------
# Data


def _second_photo(
    scenes: Sequence[Scene], rng: np.random.Generator, swap_background_prob: float
) -> list[Scene]:
    """The same objects photographed again: new texture seed, size and jitter, and with probability
    ``swap_background_prob`` another background (background augmentation: the object, its colour,
    pattern and place stay; what lies behind it does not)."""
    out = []
    for s in scenes:
        size = float(rng.uniform(*SIZE_RANGE))
        jitter = (float(rng.uniform(-MAX_JITTER, MAX_JITTER)), float(rng.uniform(-MAX_JITTER, MAX_JITTER)))
        background = s.background
        if rng.random() < swap_background_prob:
            others = [b for b in BACKGROUNDS if b != s.background]
            background = others[int(rng.integers(len(others)))]
        seed = int(rng.integers(2**31 - 1))
        out.append(dataclasses.replace(s, size=size, jitter=jitter, background=background, seed=seed))
    return out


def bank(out_dir: Path, cfg: RulerConfig, seed: int) -> tuple[np.ndarray, list[Scene]]:
    """The run's scenes and their renders uint8 [n, views, S, S, 3] (views: 1 contrastive, 2 ssl),
    rendered once and cached in ``out_dir``."""
    scenes = sample_ruler_scenes(
        np.random.default_rng([seed, 11]), cfg.bank_size, pattern_prob=cfg.pattern_prob
    )
    views = 2 if cfg.which == "ssl" else 1
    path = out_dir / _BANK.format(
        which=cfg.which, seed=seed, n=cfg.bank_size, size=cfg.image_size, swap=cfg.swap_background_prob
    )
    expected = (cfg.bank_size, views, cfg.image_size, cfg.image_size, 3)
    if path.is_file():
        try:
            loaded = np.load(path)
            if loaded.shape == expected and loaded.dtype == np.uint8:
                return loaded, scenes
        except (OSError, ValueError):
            pass
    t0 = time.perf_counter()
    renders = [render_batch(scenes, cfg.image_size)]
    if views == 2:
        second = _second_photo(scenes, np.random.default_rng([seed, 12]), cfg.swap_background_prob)
        renders.append(render_batch(second, cfg.image_size))
    images = np.stack(renders, axis=1)
    atomic_numpy_save(path, images)
    logger.info(
        "rendered the %s bank (%d scenes × %d) in %.1f s",
        cfg.which,
        len(scenes),
        views,
        time.perf_counter() - t0,
    )
    return images, scenes


def random_caption(scene: Scene, rng: np.random.Generator, cfg: RulerConfig) -> str:
    """A caption of ``scene`` with each optional part said with probability ``part_prob``, a random
    order and, with probability ``prefix_prob``, a prefix such as ``"a photo of"``."""
    parts = [p for p in ("colour", "pattern", "background", "position") if rng.random() < cfg.part_prob]
    order = CAPTION_ORDERS[int(rng.integers(len(CAPTION_ORDERS)))]
    prefix = (
        CAPTION_PREFIXES[int(rng.integers(len(CAPTION_PREFIXES)))] if rng.random() < cfg.prefix_prob else ""
    )
    return caption(scene, order=order, parts=parts, prefix=prefix)


def augment(x: torch.Tensor, g: torch.Generator, cfg: RulerConfig) -> torch.Tensor:
    """Label-free augmentations of images [N, 3, S, S] in [-1, 1]: an integer translation of at most
    ``max_shift`` px (edge pixels repeated), brightness and contrast of at most ±``brightness`` /
    ``contrast``, a 3×3 blur with probability ``blur_prob``, Gaussian noise of σ ≤ ``noise_max``.
    No flips (left/right is an attribute) and no hue change (colour is one)."""
    n, _, s, _ = x.shape
    m = cfg.max_shift
    if m > 0:
        padded = F.pad(x, (m, m, m, m), mode="replicate")
        shifts = torch.randint(0, 2 * m + 1, (n, 2), generator=g)
        x = torch.stack(
            [padded[i, :, dy : dy + s, dx : dx + s] for i, (dy, dx) in enumerate(shifts.tolist())]
        )
    bright = (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * cfg.brightness
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * cfg.contrast
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * contrast + mean + bright).clamp(-1, 1)
    blur = torch.rand(n, generator=g) < cfg.blur_prob
    soft = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    x = torch.where(blur[:, None, None, None], 0.5 * x + 0.5 * soft, x)
    sigma = torch.rand(n, 1, 1, 1, generator=g) * cfg.noise_max
    return x + sigma * torch.randn(x.shape, generator=g)


# ----------------------------------------------------------------------------------------------------
# Losses


def info_nce(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of matching (image, text) embeddings (row i matches row i)."""
    img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    logits = logit_scale.clamp(max=math.log(100.0)).exp() * img @ txt.T
    target = torch.arange(img.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's NT-Xent: each view's positive is the other view of its image, the other 2N-2 views are
    negatives."""
    z = F.normalize(torch.cat([z1, z2]), dim=-1)
    n = z1.shape[0]
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def _lr(step: int, total: int, cfg: RulerConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------------------------------
# Training


def train_ruler(
    out_dir: str | Path,
    steps: int,
    seed: int = 0,
    resume: bool = True,
    *,
    config: RulerConfig,
    minutes: float | None = None,
    steps_this_call: int | None = None,
) -> RulerRecord:
    """Train (or continue training) a ruler in ``out_dir``.

    Args:
        out_dir: folder for the checkpoints, the record and the rendered bank.
        steps: total optimisation steps of the run (also sets the learning-rate schedule).
        seed: seeds the initial weights, the bank and every step's batch, captions and augmentation.
        resume: continue from ``ruler_train.pt`` in ``out_dir`` if there is one (else start over).
        config: sizes and hyper-parameters (``config.which`` picks the ruler); must equal the
            checkpoint's when resuming.
        minutes: wall-time budget for this call; training checkpoints and returns when it runs out.
        steps_this_call: stop after this many steps in this call (to split a run into sittings).

    Returns:
        The :class:`RulerRecord` (also written to ``training_record.json``).

    Raises:
        ValueError: bad ``steps``, or a checkpoint made with another config or seed.
    """
    cfg = config
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"train_ruler: steps must be a non-negative integer, got {steps!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = NAMES[cfg.which]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: nn.Module = SimCLR(cfg) if cfg.which == "ssl" else build_model(cfg)
    exported: nn.Module = model.backbone if isinstance(model, SimCLR) else model
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    record = RulerRecord(
        name=name,
        seed=seed,
        steps_done=0,
        total_steps=steps,
        wall_s=0.0,
        torch_threads=torch.get_num_threads(),
        n_params=sum(p.numel() for p in exported.parameters()),
        config=asdict(cfg),
        held_out_pairs=[list(p) for p in HELD_OUT_PAIRS],
        training_data=_training_data(cfg),
    )
    ckpt_path = out / TRAIN_CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = load_torch(ckpt_path)
        if ckpt["config"] != asdict(cfg) or ckpt["seed"] != seed:
            raise ValueError(
                f"{ckpt_path}: made with seed {ckpt['seed']} and config {ckpt['config']}, "
                f"not seed {seed} and {asdict(cfg)} (use another out_dir or resume=False)"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        record = RulerRecord(**ckpt["record"])
        record.total_steps = steps
        record.torch_threads = torch.get_num_threads()
        logger.info("%s: resuming at step %d", name, record.steps_done)
    if record.steps_done >= steps:
        return record
    images, scenes = bank(out, cfg, seed)
    n = images.shape[0]
    tokenizer = WordTokenizer(context_length=cfg.context_length)

    def save() -> None:
        atomic_torch_save(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "config": asdict(cfg),
                "seed": seed,
                "record": asdict(record),
                "version": RULER_VERSION,
            },
        )
        atomic_torch_save(out / CHECKPOINT, inference_state(exported, cfg, name))
        atomic_write_json(out / RECORD, asdict(record))

    start = time.perf_counter()
    wall_before = record.wall_s
    first = record.steps_done
    model.train()
    while record.steps_done < steps:
        step = record.steps_done
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        batch = images[idx.numpy()]
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, cfg)
        if cfg.which == "contrastive":
            cm = cast(ContrastiveRuler, model)
            rng = np.random.default_rng([seed, step, 3])
            texts = [random_caption(scenes[int(i)], rng, cfg) for i in idx.tolist()]
            ids = tokenizer(texts)
            ids = ids[:, : int((ids != 0).sum(1).max())]  # padding columns change nothing (masked)
            x = augment(to_tensor(batch[:, 0], cfg.image_size), g, cfg)
            loss = info_nce(cm.encode_image(x), cm.encode_text(ids), cm.logit_scale)
        else:
            v1 = augment(to_tensor(batch[:, 0], cfg.image_size), g, cfg)
            v2 = augment(to_tensor(batch[:, 1], cfg.image_size), g, cfg)
            z = model(torch.cat([v1, v2]))
            loss = nt_xent(z[: cfg.batch_size], z[cfg.batch_size :], cfg.temperature)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        record.pending.append(float(loss.detach()))
        record.steps_done = step + 1
        if len(record.pending) == cfg.log_every or record.steps_done == steps:
            record.loss_curve.append([record.steps_done, float(np.mean(record.pending))])
            record.pending = []
            logger.info("%s: step %d/%d loss %.4f", name, record.steps_done, steps, record.loss_curve[-1][1])
        record.wall_s = wall_before + time.perf_counter() - start
        out_of_time = minutes is not None and time.perf_counter() - start >= 60.0 * minutes
        sitting_done = steps_this_call is not None and record.steps_done - first >= steps_this_call
        if (
            record.steps_done % cfg.checkpoint_every == 0
            or record.steps_done == steps
            or out_of_time
            or sitting_done
        ):
            save()
        if out_of_time or sitting_done:
            logger.info(
                "%s: stopping at step %d/%d (budget for this call used)", name, record.steps_done, steps
            )
            break
    model.eval()
    return record


def export(out_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Copy a finished run's inference checkpoint and training record, with ``SHA256SUMS``, into
    ``dest`` (default ``benchmark/toy/assets/rulers/<name>/``), replacing what was there.

    Returns:
        The destination folder.

    Raises:
        FileNotFoundError: ``out_dir`` has no checkpoint or record.
        ValueError: the run has not finished its steps.
    """
    src = Path(out_dir)
    ckpt, rec = src / CHECKPOINT, src / RECORD
    if not ckpt.is_file() or not rec.is_file():
        raise FileNotFoundError(f"{src}: no {CHECKPOINT} and {RECORD} to export (train first)")
    state = load_torch(ckpt)
    record = load_torch(src / TRAIN_CHECKPOINT)["record"]
    if record["steps_done"] < record["total_steps"]:
        raise ValueError(f"{src}: the run stopped at step {record['steps_done']}/{record['total_steps']}")
    target = Path(dest) if dest is not None else ASSETS_RULERS / state["name"]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    mask = os.umask(0)
    os.umask(mask)
    tmp.chmod(0o777 & ~mask)  # a shipped folder, not mkdtemp's private 0o700
    atomic_torch_save(tmp / CHECKPOINT, state)
    atomic_write_json(tmp / RECORD, {**record, "world": world_description()})
    write_sha256_manifest(tmp)
    return replace_dir(tmp, target)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring). Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.train_rulers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--which", required=True, choices=("contrastive", "ssl"))
    parser.add_argument("--out", required=True, help="folder for checkpoints, record and rendered bank")
    parser.add_argument("--steps", type=int, default=1000, help="total training steps (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None, help="wall-time budget for this sitting")
    parser.add_argument("--bank-size", type=int, default=None, help="rendered training scenes")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument(
        "--export",
        nargs="?",
        const="",
        default=None,
        metavar="DIR",
        help="after a finished run, write the model, record and SHA256SUMS to DIR "
        "(default benchmark/toy/assets/rulers/<name>)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    overrides = {
        k: v
        for k, v in (("bank_size", args.bank_size), ("batch_size", args.batch_size), ("lr", args.lr))
        if v is not None
    }
    try:
        config = dataclasses.replace(default_config(args.which), **overrides)
        record = train_ruler(args.out, args.steps, args.seed, config=config, minutes=args.minutes)
        print(f"{record.name}: {record.steps_done}/{record.total_steps} steps, {record.wall_s / 60:.1f} min")
        if args.export is not None and record.steps_done >= record.total_steps:
            dest = export(args.out, args.export or None)
            print(f"exported to {dest}")
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
