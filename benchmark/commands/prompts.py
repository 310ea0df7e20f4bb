"""``overfit-bench prompts``: a suite's evaluation prompts and seeds, as ``score --images`` lays them out."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "prompts",
        help="list a suite's evaluation prompts and seeds (the score --images folder layout)",
        description="Print, per concept, every (prompt index, template, seed) of the suite's generation plan "
        "and the image file it belongs in: DIR/<concept>/<prompt_index>_<seed>.png for `overfit-bench score "
        "--images DIR`. The {concept} slot is where a method writes its concept; CLIP-T reads the prompt with "
        "the class noun there.",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--suite", default="toy", help="a shipped suite's name (default: toy)")
    where.add_argument("--manifest", type=Path, help="a suite manifest file instead of a shipped suite")
    p.add_argument("--concepts", help="comma-separated concept ids (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from benchmark.commands.run import suite_source
    from benchmark.data.manifest import load_manifest

    ref, _ = suite_source(args)
    manifest = load_manifest(ref)
    if manifest.source_type == "generated":
        from benchmark.paths import cache_dir
        from benchmark.suites import load_suite

        suite = load_suite(ref, cache=cache_dir())  # a generated suite's prompts live in its config
        plan_source = [(c.id, c.class_noun, list(c.prompts)) for c in suite.concepts]
        seeds = list(suite.seeds)[: suite.images_per_prompt]
    else:
        plan_source = [
            (c.id, c.class_noun, list(manifest.prompt_sets[c.prompt_set])) for c in manifest.concepts
        ]
        seeds = list(manifest.seeds)[: manifest.images_per_prompt]
    wanted = set(args.concepts.split(",")) if args.concepts else None
    if wanted is not None:
        unknown = sorted(wanted - {cid for cid, _, _ in plan_source})
        if unknown:
            raise KeyError(f"suite {manifest.name!r} has no concept(s) {', '.join(unknown)}")
    for cid, noun, prompts in plan_source:
        if wanted is not None and cid not in wanted:
            continue
        if not args.json:
            print(f"{cid} (class noun: {noun}; seeds {', '.join(map(str, seeds))})")
        for i, tpl in enumerate(prompts):
            for seed in seeds:
                file = f"{cid}/{i}_{seed}.png"
                if args.json:
                    print(
                        json.dumps(
                            {"concept": cid, "prompt_index": i, "template": tpl, "seed": seed, "file": file}
                        )
                    )
                else:
                    print(f"  {file:<32} {tpl}")
    return 0
