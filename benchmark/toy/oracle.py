"""The ground-truth oracle: a small CNN that reads a toy image back into its attributes.

Five classification heads share one convolutional trunk: shape, colour, background, position and
pattern (``"none"`` or which pattern). The trunk keeps a 4×4 spatial map that is flattened (not
pooled) into the heads, so the position head sees where the object is.

Training draws from a bank of rendered scenes of every combination (the oracle knows the renderer;
``held_out="exclude"`` trains it without the held-out combinations instead, for a compositional
generalisation check), half of them patterned, with light noise and blur so that the oracle
tolerates a generator's softer images. Every step's randomness comes from ``(seed, step)``, so a resumed run is identical
to an uninterrupted one. :func:`evaluate` reports per-attribute accuracy on freshly rendered
held-out-combination scenes (and, separately, on fresh held-in scenes).
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmark.io import atomic_write_json
from benchmark.toy.io import atomic_numpy_save, atomic_torch_save, load_torch
from benchmark.toy.render import render_batch
from benchmark.toy.world import BACKGROUNDS, COLOURS, PATTERNS, POSITIONS, SHAPES, Scene, sample_scenes

logger = logging.getLogger(__name__)

ORACLE_VERSION = 2
NO_PATTERN = "none"
HEADS: Mapping[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "background": BACKGROUNDS,
    "position": tuple(POSITIONS),
    "pattern": (NO_PATTERN, *PATTERNS),
}
CHECKPOINT = "oracle_checkpoint.pt"
RECORD = "oracle_record.json"
_BANK = "oracle_bank_{seed}_{n}_{size}.npy"


@dataclass(frozen=True)
class OracleConfig:
    """Oracle size and training settings (recorded in the checkpoint; a resume must match).

    ``bank_size`` scenes are rendered once per run (cached in the output folder); ``pattern_prob`` of
    them carry a pattern; ``held_out`` picks which combinations the bank draws from (``"include"``: all;
    ``"exclude"``: not the held-out ones).
    """

    image_size: int = 32
    width: int = 32
    hidden: int = 256
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    bank_size: int = 20000
    pattern_prob: float = 0.5
    held_out: str = "include"
    noise_max: float = 0.08
    blur_prob: float = 0.3
    checkpoint_every: int = 200
    log_every: int = 25

    def __post_init__(self) -> None:
        for name in (
            "image_size",
            "width",
            "hidden",
            "batch_size",
            "bank_size",
            "checkpoint_every",
            "log_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"OracleConfig.{name}: expected a positive integer, got {value!r}")
        if self.image_size % 8:
            raise ValueError(f"OracleConfig.image_size: expected a multiple of 8, got {self.image_size}")
        if self.held_out not in ("exclude", "include"):
            raise ValueError(f"OracleConfig.held_out: expected 'exclude' or 'include', got {self.held_out!r}")
        for name in ("pattern_prob", "blur_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"OracleConfig.{name}: expected a probability, got {getattr(self, name)!r}")


class Oracle(nn.Module):
    """CNN trunk (one full-resolution conv, three stride-2 stages down to 4×4) + a linear head per attribute.

    ``forward`` takes images [N, 3, S, S] in [-1, 1] (S = ``image_size``) and returns a dict of logits.
    """

    def __init__(self, image_size: int = 32, width: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.image_size = image_size

        def block(cin: int, cout: int, stride: int = 1) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, stride, 1), nn.GroupNorm(8, cout), nn.SiLU()]

        w = width
        layers: list[nn.Module] = block(3, w)
        for cin, cout in ((w, 2 * w), (2 * w, 4 * w), (4 * w, 4 * w)):
            layers += [*block(cin, cout, 2), *block(cout, cout)]
        if image_size != 32:  # bring any size to the 4×4 map the heads were sized for
            layers.append(nn.AdaptiveAvgPool2d(4))
        self.trunk = nn.Sequential(*layers)
        self.neck = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, hidden), nn.SiLU())
        self.heads = nn.ModuleDict({k: nn.Linear(hidden, len(v)) for k, v in HEADS.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.neck(self.trunk(x))
        return {k: head(h) for k, head in self.heads.items()}


# ----------------------------------------------------------------------------------------------------
# Labels and images


def labels_of(scenes: Sequence[Scene]) -> dict[str, torch.Tensor]:
    """Class indices per head for a list of scenes (pattern ``None`` → ``"none"``)."""
    out: dict[str, list[int]] = {k: [] for k in HEADS}
    for s in scenes:
        out["shape"].append(HEADS["shape"].index(s.shape))
        out["colour"].append(HEADS["colour"].index(s.colour))
        out["background"].append(HEADS["background"].index(s.background))
        out["position"].append(HEADS["position"].index(s.position))
        out["pattern"].append(HEADS["pattern"].index(s.pattern or NO_PATTERN))
    return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


def to_tensor(images: Any, size: int) -> torch.Tensor:
    """Images as a float tensor [N, 3, size, size] in [-1, 1].

    Accepts a uint8 array [N, H, W, 3], a float tensor [N, 3, H, W] in [-1, 1], or a list of PIL images;
    other sizes are resized (bilinear, antialiased).

    Raises:
        ValueError: an unsupported layout (the message gives the shape seen).
    """
    if isinstance(images, torch.Tensor):
        x = images.float()
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"oracle input: expected a tensor [N, 3, H, W], got {tuple(x.shape)}")
    else:
        if isinstance(images, np.ndarray):
            arr = images
        else:
            arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.uint8) for im in images])
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"oracle input: expected uint8 images [N, H, W, 3], got {arr.shape}")
        x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


def _augment(x: torch.Tensor, g: torch.Generator, cfg: OracleConfig) -> torch.Tensor:
    n = x.shape[0]
    blur = torch.rand(n, generator=g) < cfg.blur_prob
    if bool(blur.any()):
        soft = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        x = torch.where(blur[:, None, None, None], 0.5 * x + 0.5 * soft, x)
    sigma = torch.rand(n, 1, 1, 1, generator=g) * cfg.noise_max
    return x + sigma * torch.randn(x.shape, generator=g)


# ----------------------------------------------------------------------------------------------------
# Training


@dataclass
class OracleRecord:
    """What a training run did: steps, the loss curve ``[[step, mean loss], ...]`` (a point every
    ``log_every`` steps; ``pending`` holds the losses since the last point), wall time, seed."""

    seed: int
    steps_done: int
    total_steps: int
    wall_s: float
    loss_curve: list[list[float]] = field(default_factory=list)
    pending: list[float] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    version: int = ORACLE_VERSION


def _bank(out_dir: Path, cfg: OracleConfig, seed: int) -> tuple[np.ndarray, dict[str, torch.Tensor]]:
    rng = np.random.default_rng([seed, 7])
    scenes = sample_scenes(rng, cfg.bank_size, held_out=cfg.held_out, pattern_prob=cfg.pattern_prob)  # type: ignore[arg-type]
    path = out_dir / _BANK.format(seed=seed, n=cfg.bank_size, size=cfg.image_size)
    expected = (cfg.bank_size, cfg.image_size, cfg.image_size, 3)
    images: np.ndarray | None = None
    if path.is_file():
        try:
            loaded = np.load(path)
            images = loaded if loaded.shape == expected and loaded.dtype == np.uint8 else None
        except (OSError, ValueError):
            images = None
    if images is None:
        t0 = time.perf_counter()
        images = render_batch(scenes, cfg.image_size)
        atomic_numpy_save(path, images)
        logger.info("rendered the oracle's %d-scene bank in %.1f s", cfg.bank_size, time.perf_counter() - t0)
    return images, labels_of(scenes)


def _lr(step: int, total: int, cfg: OracleConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def _loss(logits: Mapping[str, torch.Tensor], labels: Mapping[str, torch.Tensor]) -> torch.Tensor:
    return torch.stack([F.cross_entropy(logits[k], labels[k]) for k in HEADS]).sum()


def train_oracle(
    out_dir: str | Path,
    steps: int,
    seed: int = 0,
    resume: bool = True,
    *,
    config: OracleConfig | None = None,
    minutes: float | None = None,
    steps_this_call: int | None = None,
) -> OracleRecord:
    """Train (or continue training) the oracle in ``out_dir``.

    Args:
        out_dir: folder for the checkpoint (``oracle_checkpoint.pt``), record and the rendered bank.
        steps: total optimisation steps of the run (also sets the learning-rate schedule).
        seed: seeds the initial weights, the bank and every step's batch and augmentation.
        resume: continue from the checkpoint in ``out_dir`` if there is one (else start over).
        config: sizes and hyper-parameters; must equal the checkpoint's when resuming.
        minutes: wall-time budget for this call; training checkpoints and returns when it runs out.
        steps_this_call: stop after this many steps in this call (to split a run into sittings).

    Returns:
        The :class:`OracleRecord` (also written to ``oracle_record.json``).

    Raises:
        ValueError: bad ``steps``, or a checkpoint made with another config or seed.
    """
    cfg = config or OracleConfig()
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"train_oracle: steps must be a non-negative integer, got {steps!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = Oracle(cfg.image_size, cfg.width, cfg.hidden)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    record = OracleRecord(seed=seed, steps_done=0, total_steps=steps, wall_s=0.0, config=asdict(cfg))
    ckpt_path = out / CHECKPOINT
    if resume and ckpt_path.is_file():
        ckpt = load_torch(ckpt_path)
        if ckpt["config"] != asdict(cfg) or ckpt["seed"] != seed:
            raise ValueError(
                f"{ckpt_path}: made with seed {ckpt['seed']} and config {ckpt['config']}, "
                f"not seed {seed} and {asdict(cfg)} (use another out_dir or resume=False)"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        record = OracleRecord(**ckpt["record"])
        record.total_steps = steps
        logger.info("oracle: resuming at step %d", record.steps_done)
    if record.steps_done >= steps:
        return record
    images, labels = _bank(out, cfg, seed)
    n = images.shape[0]

    def save() -> None:
        atomic_torch_save(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "config": asdict(cfg),
                "seed": seed,
                "record": asdict(record),
                "heads": {k: list(v) for k, v in HEADS.items()},
                "version": ORACLE_VERSION,
            },
        )
        atomic_write_json(out / RECORD, asdict(record))

    start = time.perf_counter()
    wall_before = record.wall_s
    first = record.steps_done
    model.train()
    while record.steps_done < steps:
        step = record.steps_done
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        idx = torch.randint(0, n, (cfg.batch_size,), generator=g)
        x = _augment(to_tensor(images[idx.numpy()], cfg.image_size), g, cfg)
        for group in opt.param_groups:
            group["lr"] = _lr(step, steps, cfg)
        loss = _loss(model(x), {k: v[idx] for k, v in labels.items()})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        record.pending.append(float(loss.detach()))
        record.steps_done = step + 1
        if len(record.pending) == cfg.log_every or record.steps_done == steps:
            record.loss_curve.append([record.steps_done, float(np.mean(record.pending))])
            record.pending = []
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
                "oracle: stopping at step %d/%d (budget for this call used)", record.steps_done, steps
            )
            break
    model.eval()
    return record


def load_oracle(path: str | Path) -> Oracle:
    """The oracle from a checkpoint file (or a folder holding ``oracle_checkpoint.pt``), in eval mode.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: unreadable, or made for another set of heads.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    ckpt = load_torch(p)
    if ckpt.get("heads") != {k: list(v) for k, v in HEADS.items()}:
        raise ValueError(f"{p}: oracle heads {ckpt.get('heads')} do not match this world's attributes")
    cfg = OracleConfig(**ckpt["config"])
    model = Oracle(cfg.image_size, cfg.width, cfg.hidden)
    model.load_state_dict(ckpt["model"])
    return model.eval().requires_grad_(False)


# ----------------------------------------------------------------------------------------------------
# Reading images and scoring


@torch.no_grad()
def predict_indices(oracle: Oracle, images: Any, *, batch_size: int = 256) -> dict[str, torch.Tensor]:
    """Predicted class index per head for a batch of images (any input :func:`to_tensor` accepts)."""
    x = to_tensor(images, oracle.image_size)
    outs: dict[str, list[torch.Tensor]] = {k: [] for k in HEADS}
    for start in range(0, x.shape[0], batch_size):
        logits = oracle(x[start : start + batch_size])
        for k in HEADS:
            outs[k].append(logits[k].argmax(dim=1))
    return {k: torch.cat(v) if v else torch.zeros(0, dtype=torch.long) for k, v in outs.items()}


def predict(oracle: Oracle, images: Any) -> list[dict[str, str]]:
    """The attributes the oracle reads from each image, e.g. ``{"shape": "star", ..., "pattern": "none"}``."""
    idx = predict_indices(oracle, images)
    n = len(next(iter(idx.values())))
    return [{k: HEADS[k][int(idx[k][i])] for k in HEADS} for i in range(n)]


class IdentityScorer:
    """The toy suite's identity scorer: 1 for an image the oracle reads with the concept's shape and
    pattern, else 0 (the ``identity`` metric and the toy suite's fidelity axis)."""

    def __init__(self, oracle: Oracle, tag: str) -> None:
        self.oracle, self.tag = oracle, tag

    def __call__(self, images: Sequence[Any], concept: Mapping[str, Any]) -> np.ndarray:
        reads = predict(self.oracle, list(images))
        want = (concept["shape"], concept["pattern"])
        return np.array([float((r["shape"], r["pattern"]) == want) for r in reads])


def identity_scorer() -> IdentityScorer:
    """The shipped oracle as the toy suite's identity scorer (named in the toy evaluation profile)."""
    from benchmark.io import sha256_file
    from benchmark.toy.assets import oracle_checkpoint

    path = oracle_checkpoint()
    return IdentityScorer(load_oracle(path), f"toy-oracle/file:{sha256_file(path)[:16]}")


def accuracy(oracle: Oracle, images: Any, scenes: Sequence[Scene]) -> dict[str, float]:
    """Per-attribute accuracy of the oracle on images whose true scenes are known.

    Raises:
        ValueError: different numbers of images and scenes, or none.
    """
    pred = predict_indices(oracle, images)
    truth = labels_of(scenes)
    if len(scenes) == 0 or len(pred["shape"]) != len(scenes):
        raise ValueError(f"accuracy: {len(pred['shape'])} images for {len(scenes)} scenes (need equal, > 0)")
    return {k: float((pred[k] == truth[k]).double().mean()) for k in HEADS}


def evaluate(
    oracle: Oracle, *, n: int = 1000, seed: int = 12345, pattern_prob: float = 0.5, size: int | None = None
) -> dict[str, dict[str, float]]:
    """Per-attribute accuracy on freshly rendered scenes of the held-out combinations (``"held_out"``)
    and of the pretraining combinations (``"held_in"``), ``n`` each, ``pattern_prob`` of them patterned.

    Returns:
        ``{"held_out": {"shape": acc, ...}, "held_in": {...}}``.
    """
    size = size or oracle.image_size
    result = {}
    for split, mode in (("held_out", "only"), ("held_in", "exclude")):
        rng = np.random.default_rng([seed, 1 if split == "held_out" else 2])
        scenes = sample_scenes(rng, n, held_out=mode, pattern_prob=pattern_prob)  # type: ignore[arg-type]
        result[split] = accuracy(oracle, render_batch(scenes, size), scenes)
    return result


EVAL_FILE = "oracle_eval.json"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m benchmark.toy.oracle --out DIR [--steps N] [--minutes M]``: train (resumably), then
    write the held-out / held-in accuracy to ``oracle_eval.json``. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.oracle", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", required=True, help="folder for the checkpoint, record and rendered bank")
    parser.add_argument("--steps", type=int, default=1000, help="total training steps (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=None, help="wall-time budget for this sitting")
    parser.add_argument("--eval-n", type=int, default=2000, help="scenes per evaluation split")
    parser.add_argument(
        "--bank-size", type=int, default=OracleConfig.bank_size, help="rendered training scenes"
    )
    parser.add_argument("--batch-size", type=int, default=OracleConfig.batch_size)
    parser.add_argument(
        "--exclude-held-out", action="store_true", help="train without the held-out combinations"
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    try:
        config = OracleConfig(
            bank_size=args.bank_size,
            batch_size=args.batch_size,
            held_out="exclude" if args.exclude_held_out else "include",
        )
        record = train_oracle(args.out, args.steps, args.seed, config=config, minutes=args.minutes)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"oracle: {record.steps_done}/{record.total_steps} steps, {record.wall_s / 60:.1f} min")
    if record.steps_done < record.total_steps:
        return 0
    result = evaluate(load_oracle(args.out), n=args.eval_n)
    atomic_write_json(Path(args.out) / EVAL_FILE, {"n": args.eval_n, "steps": record.steps_done, **result})
    for split, accs in result.items():
        print(f"{split}: " + ", ".join(f"{k} {v:.3f}" for k, v in accs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
