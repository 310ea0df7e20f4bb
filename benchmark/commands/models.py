"""``overfit-bench models list|fetch|verify``: the only place where weights are downloaded."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list, fetch (explicit download) or verify model weights",
        description="The only command that downloads model weights: `fetch NAME` through huggingface_hub "
        "into the Hugging Face cache (honours HF_HUB_OFFLINE); `verify NAME` checks they are there; `list` "
        "names them with their pinned revisions.",
    )
    p.add_argument(
        "action",
        choices=["list", "fetch", "verify"],
        help="list the models, fetch one, or verify one is cached",
    )
    p.add_argument("name", nargs="?", help="model name or alias (see `models list`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.model_registry import MODELS, fetch, find_model, verify

    if args.action == "list":
        for e in MODELS:
            print(f"{e.name:<14} {e.repo_id}@{e.revision}  {e.description}")
        return 0
    if not args.name:
        print(f"overfit-bench models {args.action}: error: a model name is required", file=sys.stderr)
        return 2
    try:
        entry = find_model(args.name)
    except KeyError as err:
        print(f"overfit-bench models: error: {err.args[0]}", file=sys.stderr)
        return 2
    if args.action == "verify":
        found = verify(entry)
        missing = [f for f, ok in found.items() if not ok]
        for f in missing:
            print(f"missing: {entry.repo_id}/{f} (run `overfit-bench models fetch {entry.name}`)")
        if missing:
            return 1
        print(f"{entry.name}: all {len(found)} files present in the local Hugging Face cache")
        return 0
    try:
        path = fetch(entry)
    except RuntimeError as err:
        print(f"overfit-bench models fetch: error: {err}", file=sys.stderr)
        return 1
    print(f"{entry.name}: fetched to {path}")
    return 0
