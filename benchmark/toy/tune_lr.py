"""Learning-rate sweep of a method on the toy suite, read by the oracle (how the toy LRs were chosen).

Each learning rate is one harness run (cached and resumable like any run) of ``method`` on the chosen
concepts at the ``toy`` budget; the oracle then reads its images. Printed per learning rate: concept
identity (shape and pattern shown), asked background shown, training background shown, and W2 / LFD.

Command line::

    python -m benchmark.toy.tune_lr --method dreambooth --lrs 1e-4,3e-4 [--concepts striped-star]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def sweep(
    method: str, lrs: Sequence[float], concepts: Sequence[str], out: Path, cache: Path
) -> list[dict[str, Any]]:
    """One row per learning rate: mean oracle readouts and metric values over ``concepts``."""
    from benchmark.jobs import job_context
    from benchmark.runner import run_suite
    from benchmark.settings import settings_for
    from benchmark.stages import generation_plan
    from benchmark.toy.assets import oracle_checkpoint
    from benchmark.toy.oracle import load_oracle
    from benchmark.toy.suite import concept_config
    from benchmark.toy.validity import concept_readout, read_images
    from metrics.similarity import render_slot

    oracle = load_oracle(oracle_checkpoint())
    base = settings_for("toy")
    table = []
    for lr in lrs:
        overrides = dict(base.method_overrides)
        overrides[method] = {**overrides.get(method, {}), "lr": lr}
        settings = base.replace(method_overrides=overrides)
        run_dir = out / f"{method}-lr{lr:g}"
        res = run_suite(
            suite="toy",
            methods=[method],
            concepts=list(concepts),
            settings=settings,
            run_dir=run_dir,
            cache_root=cache,
            progress=False,
        )
        ctx = job_context(
            {
                "suite": "toy",
                "data_root": None,
                "settings": settings.to_dict(),
                "cache": str(cache),
                "run_dir": str(run_dir),
                "device": "cpu",
                "progress": False,
            }
        )
        rows = [json.loads(line) for line in res.results.read_text().splitlines() if line.strip()]
        summary: dict[str, list[float]] = {}
        for cid in concepts:
            concept = ctx.suite.concept(cid)
            plan = generation_plan(ctx, concept)
            files = [run_dir / "images" / method / cid / f"{i}_{s}.png" for i, _, s in plan]
            prompts = [render_slot(t, concept.class_noun) for _, t, _ in plan]
            readout = concept_readout(read_images(oracle, files), prompts, concept_config(ctx.suite, cid))
            for k, v in readout.items():
                summary.setdefault(k, []).append(v)
            for r in rows:
                if r["concept"] == cid and r["method"] == method:
                    summary.setdefault(r["metric"], []).append(float(r["value"]))
        table.append({"lr": lr, **{k: sum(v) / len(v) for k, v in summary.items()}})
    return table


def main(argv: Sequence[str] | None = None) -> int:
    from benchmark.paths import cache_dir

    p = argparse.ArgumentParser(prog="python -m benchmark.toy.tune_lr", description=__doc__.split("\n")[0])
    p.add_argument("--method", required=True)
    p.add_argument("--lrs", required=True, help="comma-separated learning rates")
    p.add_argument("--concepts", default="striped-star", help="comma-separated toy concept ids")
    p.add_argument("--out", type=Path, default=Path("runs/toy-lr"))
    p.add_argument("--cache", type=Path, default=None)
    args = p.parse_args(argv)
    lrs = [float(x) for x in args.lrs.split(",")]
    table = sweep(args.method, lrs, args.concepts.split(","), args.out, cache_dir(args.cache))
    keys = ["identity", "background_acc", "train_background", "position_acc", "clip_i", "w2", "lfd"]
    print("lr        " + " ".join(f"{k[:12]:>12}" for k in keys))
    for row in table:
        print(f"{row['lr']:<9g} " + " ".join(f"{row.get(k, float('nan')):>12.4f}" for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
