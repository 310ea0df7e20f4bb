"""``overfit-bench methods``: the registered customization methods, with trainable numbers and artifact
bytes for a given model."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "methods",
        help="list the customization methods with their trainable numbers and artifact sizes",
        description="List the registered methods. With --model, count what each trains on that model "
        "(sd15-arch: SD-1.5 UNet + text encoder built from config with random weights, ~10 s, ~4 GiB; "
        "tiny: the test pipeline; or a local save_pretrained folder / cached hub id).",
    )
    p.add_argument(
        "--model", default=None, metavar="ID_OR_PATH", help="sd15-arch, tiny, a folder or a cached hub id"
    )
    p.add_argument("--json", action="store_true", help="print a JSON list of objects")
    p.set_defaults(func=run)


def _kib(n: int) -> str:
    if n >= 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    return f"{n / 1024:.2f} KiB"


def _table(rows: list[dict[str, Any]], model: str) -> str:
    head = ("method", "trainable", "fp32 bytes", "fp16 bytes", "file (fp32)", "steps")
    body = [
        (
            r["name"],
            f"{r['trainable_params']:,}",
            f"{r['artifact_bytes_fp32']:,} ({_kib(r['artifact_bytes_fp32'])})",
            f"{r['artifact_bytes_fp16']:,} ({_kib(r['artifact_bytes_fp16'])})",
            "-" if r.get("artifact_file_bytes") is None else f"{r['artifact_file_bytes']:,}",
            "-" if r.get("recipe_steps") is None else str(r["recipe_steps"]),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = [
        f"model: {model}  (bytes: tensor payload; file: the fp32 .safetensors incl. its JSON header)",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)),
    ]
    lines += [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(b, widths, strict=True)))
        for b in body
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from baselines import METHODS, get_method

    if args.model is None:
        rows = []
        for name in METHODS:
            m = get_method(name)
            rows.append(
                {"name": name, "description": m.description, "source": m.source, "version": m.version}
            )
        if args.json:
            print(json.dumps(rows, indent=2))
        else:
            width = max(len(r["name"]) for r in rows)
            for r in rows:
                print(f"{r['name']:<{width}}  {r['description']}")
        return 0

    from baselines.catalog import describe_methods
    from baselines.models import load_model

    pipeline = load_model(args.model)
    rows = describe_methods(pipeline)
    if args.json:
        for r in rows:
            r["model"] = args.model
        print(json.dumps(rows, indent=2))
    else:
        print(_table(rows, args.model))
    return 0
