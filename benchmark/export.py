"""A run's images and per-image scores as a Hugging Face ``datasets.Dataset`` (and back, for scoring).

``export_run(RUN_DIR, OUT)`` writes one record per generated image of the run — its method, method
version, rung, concept, prompt index, prompt template, the prompt as CLIP-T reads it (class noun in the
slot), seed, the image, and its own CLIP-T, CLIP-I and DINO (cosines with the run's suite backbones; a
metric row is the mean of these over a concept's images) — with ``save_to_disk(OUT)``, Parquet shards
in ``OUT/parquet/`` and a dataset card ``OUT/README.md`` (suite, versions, settings hash, licence).
``datasets.load_from_disk(OUT)`` gives it back unchanged; ``overfit-bench score --images OUT`` scores it
like a folder of images.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

COLUMNS = (
    "method",
    "method_version",
    "rung",
    "concept",
    "prompt_index",
    "template",
    "prompt",
    "seed",
    "image",
    "clip_t",
    "clip_i",
    "dino",
)


def is_exported_dataset(path: Path) -> bool:
    """Whether ``path`` is a folder written by :func:`export_run` (``save_to_disk`` layout)."""
    return (path / "state.json").is_file() and (path / "dataset_info.json").is_file()


def _image_sets(run_dir: Path) -> list[tuple[dict[str, Any], Path]]:
    """(about, folder) for every method/rung folder under ``RUN_DIR/images``."""
    out = []
    for folder in sorted((run_dir / "images").iterdir()):
        about = folder / "about.json"
        if folder.is_dir() and about.is_file():
            out.append((json.loads(about.read_text(encoding="utf-8")), folder))
    return out


def export_run(run_dir: Path, out: Path, *, shard_rows: int = 512) -> Any:
    """Write the run's images and per-image scores to ``out`` (see the module docstring).

    Returns:
        The ``datasets.Dataset`` written.

    Raises:
        FileNotFoundError: ``run_dir`` has no ``run.json`` or no images.
        FileExistsError: ``out`` exists and is not empty.
    """
    import datasets

    from benchmark.cache import hash_inputs
    from benchmark.jobs import job_context
    from benchmark.jobspec import JobSpec
    from benchmark.stages import generation_plan, reference_features
    from metrics.backbones import extract_image_features, extract_text_features
    from metrics.similarity import render_slot

    record_path = run_dir / "run.json"
    if not record_path.is_file():
        raise FileNotFoundError(f"{run_dir}: no run.json (expected a folder written by `overfit-bench run`)")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} exists and is not empty; choose a new folder for the export")
    record = json.loads(record_path.read_text(encoding="utf-8"))
    ctx = job_context(JobSpec.from_record(record, data_root=_data_root(record)))
    sets = _image_sets(run_dir)
    if not sets:
        raise FileNotFoundError(f"{run_dir}/images: no generated images to export")
    clip, dino = ctx.backbone(ctx.settings.extractor("clip")), ctx.backbone(ctx.settings.extractor("dino"))
    rows: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for about, folder in sets:
        for concept in ctx.suite.concepts:
            plan = generation_plan(ctx, concept)
            files = [folder / concept.id / f"{i}_{s}.png" for i, _, s in plan]
            if not all(f.is_file() for f in files):
                continue
            prompts = [render_slot(tpl, concept.class_noun) for _, tpl, _ in plan]
            img = extract_image_features(clip, files)
            txt, _ = extract_text_features(clip, prompts)
            ref_c = reference_features(ctx, concept, ctx.settings.extractor("clip"))
            ref_d = reference_features(ctx, concept, ctx.settings.extractor("dino"))
            dimg = extract_image_features(dino, files)
            clip_t = (img * txt).sum(dim=1).double()
            clip_i = (img.double() @ ref_c.double().T).mean(dim=1)
            dino_s = (dimg.double() @ ref_d.double().T).mean(dim=1)
            for k, ((i, tpl, seed), path) in enumerate(zip(plan, files, strict=True)):
                rows["method"].append(about["method"])
                rows["method_version"].append(str(about.get("version", "")))
                rows["rung"].append(about.get("rung"))
                rows["concept"].append(concept.id)
                rows["prompt_index"].append(i)
                rows["template"].append(tpl)
                rows["prompt"].append(prompts[k])
                rows["seed"].append(seed)
                rows["image"].append({"bytes": path.read_bytes(), "path": f"{concept.id}/{i}_{seed}.png"})
                rows["clip_t"].append(float(clip_t[k]))
                rows["clip_i"].append(float(clip_i[k]))
                rows["dino"].append(float(dino_s[k]))
    features = datasets.Features(
        {
            "method": datasets.Value("string"),
            "method_version": datasets.Value("string"),
            "rung": datasets.Value("float64"),
            "concept": datasets.Value("string"),
            "prompt_index": datasets.Value("int32"),
            "template": datasets.Value("string"),
            "prompt": datasets.Value("string"),
            "seed": datasets.Value("int64"),
            "image": datasets.Image(),
            "clip_t": datasets.Value("float64"),
            "clip_i": datasets.Value("float64"),
            "dino": datasets.Value("float64"),
        }
    )
    ds = datasets.Dataset.from_dict(rows, features=features)  # the PNG files' own bytes, embedded
    out.mkdir(parents=True, exist_ok=True)
    ds.save_to_disk(str(out))
    shards = out / "parquet"
    shards.mkdir()
    for k, start in enumerate(range(0, len(ds), shard_rows)):
        ds.select(range(start, min(start + shard_rows, len(ds)))).to_parquet(
            str(shards / f"train-{k:05d}.parquet")
        )
    settings_hash = hash_inputs(ctx.settings.identity())[:16]
    (out / "README.md").write_text(_card(ctx, record, len(ds), settings_hash), encoding="utf-8")
    return ds


def _data_root(record: dict[str, Any]) -> str | None:
    """The data root a run used (generated suites render into their cache)."""
    from benchmark.data.manifest import load_manifest

    manifest = load_manifest(record["suite"])
    return None if manifest.source_type == "generated" else record.get("data_root")


def _card(ctx: Any, record: dict[str, Any], n: int, settings_hash: str) -> str:
    m = ctx.suite.manifest
    licence = dict(m.license) if m.license else {}
    methods = ", ".join(record.get("methods", []))
    return f"""---
license: other
pretty_name: overfit-bench {m.name}@{m.version} generations
tags: [text-to-image, personalization, overfitting, overfit-bench]
---

# overfit-bench: generated images of a `{m.name}` run

{n} images generated by `overfit-bench run` on suite **{m.name}**, version **{m.version}**, with the methods
{methods}. Each record: method, method version, rung (training budget × the method's tuned steps; null for
the base model), concept, prompt index, prompt template (`{{concept}}` is where a method wrote its concept),
the prompt with the class noun (what CLIP-T reads), seed, the image, and its own CLIP-T, CLIP-I and DINO
(raw cosines with the suite's backbones; each metric row of the run is the mean of these over a concept's
images).

- Evaluation settings hash: `{settings_hash}` (model `{ctx.settings.model}`, backbones
  `{ctx.settings.extractor("clip").name}` / `{ctx.settings.extractor("dino").name}`, {ctx.settings.steps} sampling steps, guidance
  {ctx.settings.guidance}, {ctx.settings.resolution} px).
- Reference photos: not included. Licence of the suite's data: {licence.get("name", "see the suite manifest")}
  {("(" + licence["url"] + ")") if licence.get("url") else ""}; the generated images are released with the
  same terms as the code that made them.
- Load: `datasets.load_from_disk(path)`, or the Parquet shards in `parquet/`. Score again:
  `overfit-bench score --suite {m.name} --images path`.
"""


@contextmanager
def dataset_as_folders(path: Path) -> Iterator[list[tuple[str, str, float | None, Path]]]:
    """An exported dataset unpacked into image folders: ``(method, method_version, rung, folder)`` per
    (method, rung), each laid out ``<concept>/<prompt_index>_<seed>.png`` (removed afterwards)."""
    import datasets

    ds = datasets.load_from_disk(str(path))
    with tempfile.TemporaryDirectory(prefix="overfit-bench-export-") as tmp:
        groups: dict[tuple[str, str, float | None], Path] = {}
        for rec in ds:
            key = (rec["method"], rec["method_version"], rec["rung"])
            if key not in groups:
                groups[key] = Path(tmp) / f"set-{len(groups)}"
            folder = groups[key] / rec["concept"]
            folder.mkdir(parents=True, exist_ok=True)
            rec["image"].save(folder / f"{rec['prompt_index']}_{rec['seed']}.png")  # PNG: the same pixels
        yield [(m, v, r, f) for (m, v, r), f in groups.items()]
