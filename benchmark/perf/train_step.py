"""One training step per method on the SD-1.5 architecture: median time and peak memory.

Each method's SD-1.5 recipe is used as is (precision, gradient checkpointing, prior preservation —
Custom Diffusion's class row doubles its batch), with batch 1 and no accumulation, on random weights
(the UNet and text encoder built from config; no VAE: training reads cached latents). On a GPU: 512 px
(latent 64²) with the recipe's fp16 autocast; on a CPU: latent 32² in fp32. Every method runs in its
own subprocess so that peak memory is that method's alone: CUDA ``max_memory_allocated`` on a GPU,
the process's peak resident set on a CPU (also reported as the growth over the loaded model).

Run as ``python -m benchmark.perf.train_step [--methods a,b] [--latent N] [--quick]``; ``main(quick)``
is the entry point for ``overfit-bench bench train``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_STATUS = Path("/proc/self/status")


def _rss_bytes(field: str) -> int | None:
    """``VmRSS``/``VmHWM`` of this process in bytes (Linux), else ``None``."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter to the current RSS (Linux ≥ 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _synthetic_data(cfg: dict[str, Any], prompts: list[str], latent: int, channels: int) -> Any:
    import torch

    from baselines.data import LatentSet
    from baselines.training import TrainingData

    g = torch.Generator().manual_seed(0)

    def latents(n: int) -> LatentSet:
        mean = torch.randn(n, 2, channels, latent, latent, generator=g)
        return LatentSet(mean, torch.full_like(mean, 0.05))

    data = TrainingData(
        instance=latents(4), prompts=prompts, hflip=float(cfg["hflip"]), scaling_factor=0.18215
    )
    if cfg.get("prior_preservation"):
        data.prior, data.prior_prompts = latents(4), ["a photo of a dog"]
    return data


def time_method(name: str, *, latent: int, steps: int, device: str) -> dict[str, Any]:
    """Build SD-1.5 (random weights), set up ``name``'s training and time ``steps`` optimizer steps
    after one warm-up step.

    Returns:
        ``method``, ``device``, ``latent``, ``batch``, ``precision``, ``gradient_checkpointing``,
        ``trainable_params``, ``step_s`` (median), ``steps_s`` (all), ``peak_bytes`` (over warm-up and
        timed steps) and, on CPU, ``model_rss_bytes`` (resident set once the model is built, before any
        step; the difference is gradients, optimizer state and activations).
    """
    import torch

    import baselines
    from baselines.models import build_sd15_architecture
    from baselines.training import TrainConfig, Trainer, gradient_checkpointing

    method = baselines.get_method(name)
    cfg = method.resolve_config({"batch_size": 1, "grad_accum": 1, "eval_samples": 0})
    comps = build_sd15_architecture(device=device)
    custom = method.customize(comps, cfg, "dog", None, seed=0)
    pipe = custom.pipeline
    if pipe.unet is not comps.unet:  # DreamBooth/LoRA train a copy: drop the base UNet to free its memory
        comps.unet = pipe.unet
    tcfg = TrainConfig.from_config(cfg)
    trainer = Trainer(pipe, custom.params, tcfg, seed=0)
    data = _synthetic_data(
        cfg, method.training_prompts(cfg, "dog"), latent, int(pipe.unet.config.in_channels)
    )
    cuda = device.startswith("cuda")
    times: list[float] = []
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    else:
        _reset_peak_rss()
    model_rss = _rss_bytes("VmRSS")
    with pipe.session(), gradient_checkpointing(pipe.unet, tcfg.gradient_checkpointing):
        trainer.train_step(data)  # warm-up (allocator, optimizer state)
        for _ in range(steps):
            start = time.perf_counter()
            trainer.train_step(data)
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() if cuda else _rss_bytes("VmHWM")
    return {
        "method": name,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "latent": latent,
        "batch": 1 + (1 if cfg.get("prior_preservation") else 0),
        "precision": cfg["mixed_precision"] if cuda else "fp32",
        "gradient_checkpointing": bool(cfg["gradient_checkpointing"]),
        "trainable_params": int(sum(p.numel() for p in custom.params.values() if p.requires_grad)),
        "step_s": statistics.median(times),
        "steps_s": times,
        "peak_bytes": peak,
        "model_rss_bytes": None if cuda else model_rss,
    }


def _run_child(name: str, latent: int, steps: int, threads: int | None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmark.perf.train_step", "--child", name, "--latent", str(latent)]
    cmd += ["--steps", str(steps)] + (["--threads", str(threads)] if threads else [])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return {
            "method": name,
            "error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed",
        }
    return json.loads(out.stdout.strip().splitlines()[-1])


def format_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of :func:`time_method` rows."""
    from leaderboard.markdown import markdown_table

    gib = 1 << 30
    header = [
        "method", "trainable", "batch rows", "precision", "grad ckpt", "step s (median)", "step s (min)",
        "peak memory", "over model",
    ]  # fmt: skip
    align = ["left", "right", "right", "left", "left", "right", "right", "right", "right"]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["method"], f"error: {r['error']}"] + [""] * 7)
            continue
        over = (
            ""
            if r.get("model_rss_bytes") is None
            else f"{(r['peak_bytes'] - r['model_rss_bytes']) / gib:.2f} GiB"
        )
        body.append(
            [
                r["method"], f"{r['trainable_params']:,}", str(r["batch"]), str(r["precision"]),
                "on" if r["gradient_checkpointing"] else "off", f"{r['step_s']:.2f}", f"{min(r['steps_s']):.2f}",
                f"{r['peak_bytes'] / gib:.2f} GiB", over,
            ]
        )  # fmt: skip
    return markdown_table(header, body, align)


def run_all(
    names: list[str], *, latent: int | None = None, steps: int = 3, threads: int | None = None
) -> list[dict[str, Any]]:
    """Time every method in its own subprocess. ``latent`` defaults to 64 on CUDA, 32 on CPU."""
    import torch

    cuda = torch.cuda.is_available()
    latent = latent or (64 if cuda else 32)
    rows = []
    for name in names:
        logger.info("timing %s (latent %d², %s)", name, latent, "cuda" if cuda else "cpu")
        rows.append(_run_child(name, latent, steps, threads))
    return rows


def main(quick: bool = False) -> int:
    """Entry point for ``overfit-bench bench train``: all registered trainable methods; ``quick``
    uses latent 16² and one timed step."""
    import baselines

    names = [n for n in baselines.list_methods() if n != "base"]
    rows = run_all(names, latent=16 if quick else None, steps=1 if quick else 3)
    print(format_table(rows))
    return 0 if all("error" not in r for r in rows) else 1


def _cli(argv: list[str] | None = None) -> int:
    import baselines

    p = argparse.ArgumentParser(
        prog="python -m benchmark.perf.train_step", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--methods", default=",".join(n for n in baselines.list_methods() if n != "base"))
    p.add_argument("--latent", type=int, default=None, help="latent side (default 64 on CUDA, 32 on CPU)")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    p.add_argument("--quick", action="store_true", help="latent 16², one timed step")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        latent = args.latent or (64 if device == "cuda" else 32)
        print(json.dumps(time_method(args.child, latent=latent, steps=args.steps, device=device)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = [n.strip() for n in args.methods.split(",") if n.strip()]
    latent = 16 if args.quick and args.latent is None else args.latent
    rows = run_all(names, latent=latent, steps=1 if args.quick else args.steps, threads=args.threads)
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(_cli())
