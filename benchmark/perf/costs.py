"""The cost table behind ``overfit-bench run --plan``: what each kind of work costs on the SD-1.5 architecture.

Measured on random weights saved as a local diffusers folder (``save_pretrained``) and loaded back with
``baselines.models.load_model``, so the real loading path is what is timed:

- one training step per method with its recipe's precision (``benchmark.perf.train_step``, each method in
  its own process: median time and peak memory);
- one UNet call on a classifier-free-guidance batch of 4 images (8 rows), the unit of generation
  (DDIM with N steps costs N calls per 4 images) plus the VAE decode of 4 images;
- LFD rows per second (conditional UNet rows, batch 8);
- CLIP ViT-B/32 and DINO ViT-S/16 image features per second at 224 px (random weights: same compute).

On a GPU: 512 px (latent 64²). On a CPU the same work at a reduced latent (default 16², 128 px) and the
table says so (``gpu: false``); a plan made from it reports device-hours of that CPU, not GPU-hours.

``overfit-bench bench costs`` writes ``benchmark/perf/costs.json`` (read by ``run --plan`` for the suites whose
model is SD-1.5, ``SD15_MODELS``) and ``docs/COSTS.md``; ``overfit-bench bench costs --suite NAME`` measures
a suite's own model instead (:mod:`benchmark.perf.suite_costs`).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TABLE = Path(__file__).resolve().parent / "costs.json"
DOC = ROOT / "docs" / "COSTS.md"
# docs/COSTS.md below this line is written by hand (the toy table, plans made from the tables) and kept
END_OF_GENERATED = "<!-- end of the part `overfit-bench bench costs` writes -->"
# the models this table prices (``run --plan`` picks a suite's table by its model): SD-1.5, and the
# random-weight SD-1.5 architecture folder of the sd15-check suite
SD15_MODELS = ("stable-diffusion-v1-5/stable-diffusion-v1-5", "sd15-arch-seed0")


def _median_time(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(
    *, latent: int | None = None, repeats: int = 3, methods: list[str] | None = None
) -> dict[str, Any]:
    """Measure every figure of the table (see the module docstring)."""
    import torch

    import baselines
    from baselines.models import build_sd15_architecture, load_model
    from baselines.pipeline import CustomizedPipeline
    from benchmark.perf.train_step import run_all
    from metrics.backbones import extract_image_features, load_clip, load_dino

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    latent = latent or (64 if cuda else 16)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    with tempfile.TemporaryDirectory(prefix="overfit-bench-sd15-") as tmp:
        from diffusers import DDIMScheduler, StableDiffusionPipeline

        comps = build_sd15_architecture(with_vae=True)
        full: Any = StableDiffusionPipeline(
            vae=comps.vae,
            text_encoder=comps.text_encoder,
            tokenizer=comps.tokenizer,
            unet=comps.unet,
            scheduler=DDIMScheduler.from_config(comps.scheduler.config),
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
        full.save_pretrained(tmp)
        del comps
        pipe = CustomizedPipeline(load_model(tmp, device=device, progress=False))
        unet = pipe.components_obj.unet
        dtype = torch.float16 if cuda else torch.float32
        unet.to(dtype)
        cond = pipe.encode_prompts(["a photo of a dog"] * 8).embeddings.to(device, dtype)
        z = torch.randn(8, 4, latent, latent, device=device, dtype=dtype)
        t = torch.full((8,), 500, device=device, dtype=torch.long)

        def call() -> None:
            with torch.no_grad():
                unet(z, t, encoder_hidden_states=cond)
            sync()

        unet_call_s = _median_time(call, repeats)
        vae = pipe.components_obj.vae.to(dtype)
        zd = torch.randn(4, 4, latent, latent, device=device, dtype=dtype)

        def decode() -> None:
            with torch.no_grad():
                vae.decode(zd)
            sync()

        decode_s = _median_time(decode, repeats)
    feats = {}
    for name, loader in (
        ("clip", lambda: load_clip("ViT-B-32", None)),
        ("dino", lambda: load_dino(weights=None)),
    ):
        bb = loader()
        x = torch.randn(32, 3, 224, 224)
        feats[name] = 32 / _median_time(
            lambda bb=bb, x=x: extract_image_features(bb, x, device=device), repeats
        )
    names = methods or [n for n in baselines.list_methods() if n != "base"]
    steps = run_all(names, latent=latent, steps=repeats)
    gib = float(1 << 30)
    table = {
        "gpu": cuda,
        "device": (
            torch.cuda.get_device_name()
            if cuda
            else f"CPU ({platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} threads, fp32)"
        ),
        "measured": dt.date.today().isoformat(),
        "models": list(SD15_MODELS),
        "command": "overfit-bench bench costs",
        "latent": latent,
        "resolution": latent * 8,
        "note": ""
        if cuda
        else f"CPU-only: measured at {latent * 8} px (latent {latent}²) in fp32, not 512 px on a GPU",
        "unet_call_batch": 4,
        "unet_call_s": unet_call_s + decode_s / 50.0,  # the decode of 4 images spread over a 50-step sampler
        "unet_call_only_s": unet_call_s,
        "vae_decode_4_s": decode_s,
        "lfd_rows_per_s": 8 / unet_call_s,
        "clip_images_per_s": feats["clip"],
        "dino_images_per_s": feats["dino"],
        "feature_images_per_s": 1.0 / (1.0 / feats["clip"] + 1.0 / feats["dino"]) * 2.0,
        "train_step_s": {r["method"]: r["step_s"] for r in steps if "step_s" in r},
        "peak_memory_gib": {r["method"]: r["peak_bytes"] / gib for r in steps if "peak_bytes" in r},
        "train_rows": steps,
    }
    return table


def render_doc(table: dict[str, Any]) -> str:
    """docs/COSTS.md from a table."""
    where = (
        f"Measured with `{table['command']}` on {table['device']}, {table['measured']}, on the SD-1.5 architecture "
        f"(random weights saved with `save_pretrained` and loaded with `load_model`) at {table['resolution']} px "
        f"(latent {table['latent']}²)."
    )
    lines = [
        "# Costs",
        "",
        "_Generated by `overfit-bench bench costs`; `overfit-bench run --plan` reads the same figures from "
        "`benchmark/perf/costs.json` for the suites whose model is SD-1.5 (dreambench, customconcept101, "
        "sd15-check). The toy suite has its own table, below._",
        "",
        where,
    ]
    if not table["gpu"]:
        lines += [
            "",
            f"**CPU-only.** {table['note']}. No GPU was available when this table was measured; a plan made from "
            "it counts work exactly but its hours are hours of this CPU at this reduced size, not GPU-hours. "
            "Re-run `overfit-bench bench costs` on the GPU a run will use to replace it.",
        ]
    from leaderboard.markdown import table_lines

    figures = [
        [
            "UNet call, CFG batch of 4 images",
            f"{table['unet_call_only_s']:.3f} s",
            "median of 3 after a warm-up, 8 rows",
        ],
        ["VAE decode, 4 images", f"{table['vae_decode_4_s']:.3f} s", "median of 3 after a warm-up"],
        ["LFD rows", f"{table['lfd_rows_per_s']:.2f} /s", "conditional rows, batch 8 (the UNet call above)"],
        ["CLIP ViT-B/32 features", f"{table['clip_images_per_s']:.1f} images/s", "224 px, batch 32"],
        ["DINO ViT-S/16 features", f"{table['dino_images_per_s']:.1f} images/s", "224 px, batch 32"],
    ]
    steps = [
        [r["method"], f"error: {r['error']}", ""]
        if "error" in r
        else [r["method"], f"{r['step_s']:.2f}", f"{r['peak_bytes'] / (1 << 30):.2f}"]
        for r in table["train_rows"]
    ]
    lines += ["", *table_lines(["figure", "value", "how"], figures, ["left", "right", "left"])]
    lines += [
        "",
        "One training step per method (batch 1, no accumulation, the recipe's precision on a GPU, fp32 on a CPU; "
        "each method in its own process):",
        "",
        *table_lines(["method", "step (median s)", "peak memory (GiB)"], steps, ["left", "right", "right"]),
    ]
    return "\n".join(lines) + "\n"


def main(quick: bool = False, suite: str | None = None) -> int:
    """Entry point for ``overfit-bench bench costs`` (``quick``: one timed repeat, two methods; ``suite``: the
    table of that suite's own model, :mod:`benchmark.perf.suite_costs`, written to
    ``benchmark/perf/costs-<model>.json``)."""
    if suite is not None:
        from benchmark.perf.suite_costs import measure_suite, render_suite_table, table_path

        table = measure_suite(suite, methods=["infusion", "dreambooth-lora"] if quick else None)
        if not quick:
            where = table_path(table["models"][0])
            where.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
            print(f"wrote {where.relative_to(ROOT)}")
        print(render_suite_table(table))
        return 0
    table = measure(repeats=1 if quick else 3, methods=["infusion", "dreambooth-lora"] if quick else None)
    if quick:
        print(json.dumps({k: v for k, v in table.items() if k != "train_rows"}, indent=1))
        return 0
    TABLE.write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
    old = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    kept = old[old.index(END_OF_GENERATED) + len(END_OF_GENERATED) :] if END_OF_GENERATED in old else "\n"
    DOC.write_text(render_doc(table) + "\n" + END_OF_GENERATED + kept, encoding="utf-8")
    print(render_doc(table))
    return 0
