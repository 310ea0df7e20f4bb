"""Maintainer tool: (re)compute the upstream-derived parts of a manifest from a local upstream copy.

The hand-chosen parts of a manifest (LFD prompts, class prompts, seeds, licence text, version) are
kept; the parts read from upstream (concepts, class nouns, image checksums, prompt lists, metadata
file checksums) are recomputed, so the manifest can be checked against a copy at any time::

    python -m benchmark.data.build dreambench --from ../shared/datasets/dreambench --check
    python -m benchmark.data.build customconcept101 --from ../shared/datasets/customconcept101 --write

Remember to bump ``version`` when ``--write`` changes anything that can move a number.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark.io import sha256_file

DREAMBENCH_LIVE_CLASSES = frozenset({"cat", "dog"})
DREAMBENCH_METADATA = ("LICENSE.md", "dataset/prompts_and_classes.txt", "dataset/references_and_licenses.txt")
CUSTOMCONCEPT101_LIVE_PREFIXES = ("pet_", "person_")
CUSTOMCONCEPT101_IMAGE_ROOT = "benchmark_dataset"

_FORMAT_LINE = re.compile(r"^'(?P<p>.*)'\.format\(unique_token,\s*class_token\),?$")


def convert_dreambench_prompt(prompt: str, where: str = "prompt") -> str:
    """Turn ``'a {0} {1} in the jungle'`` (unique token, class token) into ``'a {concept} in the jungle'``.

    Raises:
        ValueError: the prompt does not contain ``{0} {1}`` exactly once, or has other braces.
    """
    if prompt.count("{0} {1}") != 1:
        raise ValueError(f"{where}: expected exactly one '{{0}} {{1}}' in {prompt!r}")
    out = prompt.replace("{0} {1}", "{concept}")
    if out.replace("{concept}", "").count("{") or out.count("}") != 1:
        raise ValueError(f"{where}: unexpected braces in {prompt!r}")
    return out


def parse_prompts_and_classes(
    text: str, origin: str = "prompts_and_classes.txt"
) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Parse DreamBench's ``dataset/prompts_and_classes.txt``.

    Returns:
        ``(classes, prompt_sets)``: subject → class noun in file order, and
        ``{"object": [...], "live": [...]}`` as ``{concept}`` templates in file order.

    Raises:
        ValueError: the file does not have the upstream layout (the message names file and line).
    """
    lines = text.splitlines()
    classes: dict[str, str] = {}
    sets: dict[str, list[str]] = {}
    section: str | None = None
    for no, raw in enumerate(lines, 1):
        line = raw.strip()
        where = f"{origin}:{no}"
        if line == "subject_name,class":
            section = "classes"
            continue
        if line == "Object Prompts":
            section = "object"
            continue
        if line == "Live Subject Prompts":
            section = "live"
            continue
        if section == "classes":
            if not line:
                section = None
                continue
            subject, sep, noun = line.partition(",")
            if not sep or not subject or not noun:
                raise ValueError(f"{where}: expected 'subject,class', got {raw!r}")
            if subject in classes:
                raise ValueError(f"{where}: subject {subject!r} listed twice")
            classes[subject] = noun
        elif section in ("object", "live"):
            m = _FORMAT_LINE.match(line)
            if m:
                sets.setdefault(section, []).append(convert_dreambench_prompt(m.group("p"), where))
            elif line == "]":
                section = None
            elif line and line != "prompt_list = [":
                raise ValueError(f"{where}: unexpected line in the {section} prompt list: {raw!r}")
    if not classes:
        raise ValueError(f"{origin}: no 'subject_name,class' table found")
    for name in ("object", "live"):
        if not sets.get(name):
            raise ValueError(f"{origin}: no {name} prompt list found")
    return classes, sets


def _entry(root: Path, rel: str) -> dict[str, Any]:
    digest, size = sha256_file(root / rel), (root / rel).stat().st_size
    return {"path": rel, "sha256": digest, "bytes": size}


def dreambench_fields(src: Path) -> dict[str, Any]:
    """The upstream-derived manifest fields of DreamBench, computed from a local copy.

    Returns:
        ``{"files", "prompt_sets", "concepts"}`` as they appear in the manifest.

    Raises:
        FileNotFoundError: a metadata file or a subject folder is missing.
        ValueError: ``prompts_and_classes.txt`` cannot be parsed.
    """
    text = (src / "dataset/prompts_and_classes.txt").read_text(encoding="utf-8")
    classes, sets = parse_prompts_and_classes(text, str(src / "dataset/prompts_and_classes.txt"))
    concepts = []
    for subject, noun in classes.items():
        folder = src / "dataset" / subject
        images = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".jpg")
        if not images:
            raise FileNotFoundError(f"{folder}: no .jpg images for subject {subject!r}")
        kind = "live" if noun in DREAMBENCH_LIVE_CLASSES else "object"
        concepts.append(
            {
                "id": subject,
                "class_noun": noun,
                "kind": kind,
                "prompt_set": kind,
                "images": [_entry(src, f"dataset/{subject}/{name}") for name in images],
            }
        )
    return {
        "files": [_entry(src, rel) for rel in DREAMBENCH_METADATA],
        "prompt_sets": {"object": sets["object"], "live": sets["live"]},
        "concepts": concepts,
    }


def read_customconcept101_prompts(path: Path) -> list[str]:
    """Read one CustomConcept101 prompt file: one prompt per line, ``{}`` becomes ``{concept}``.

    Lines are stripped of surrounding whitespace (several upstream lines end in a space; the CLIP
    tokenizer ignores it) and empty lines are dropped.

    Raises:
        ValueError: a line does not contain exactly one ``{}`` or has other braces.
    """
    out = []
    for no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not line:
            continue
        if line.count("{}") != 1 or line.replace("{}", "").count("{") or line.replace("{}", "").count("}"):
            raise ValueError(f"{path}:{no}: expected exactly one '{{}}' slot, got {raw!r}")
        out.append(line.replace("{}", "{concept}"))
    return out


def customconcept101_fields(src: Path) -> dict[str, Any]:
    """The upstream-derived manifest fields of CustomConcept101, computed from a local copy.

    Returns:
        ``{"files", "prompt_sets", "concepts"}`` as they appear in the manifest.

    Raises:
        FileNotFoundError: ``dataset.json`` or a prompt file is missing.
        ValueError: ``dataset.json`` or a prompt file is malformed.
    """
    entries = json.loads((src / "dataset.json").read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{src / 'dataset.json'}: expected a list of concepts")
    concepts = []
    prompt_sets: dict[str, list[str]] = {}
    for i, item in enumerate(entries):
        where = f"{src / 'dataset.json'}[{i}]"
        try:
            instance_dir = str(item["instance_data_dir"])
            prompt_file = str(item["prompt_filename"])
            class_noun = str(item["class_prompt"])
        except (KeyError, TypeError) as err:
            raise ValueError(
                f"{where}: expected instance_data_dir, class_prompt, prompt_filename ({err})"
            ) from err
        cid = Path(instance_dir).name
        set_name = Path(prompt_file).stem
        if set_name not in prompt_sets:
            prompt_sets[set_name] = read_customconcept101_prompts(src / prompt_file)
        concepts.append(
            {
                "id": cid,
                "class_noun": class_noun,
                "kind": "live" if cid.startswith(CUSTOMCONCEPT101_LIVE_PREFIXES) else "object",
                "prompt_set": set_name,
                "image_dir": f"{CUSTOMCONCEPT101_IMAGE_ROOT}/{cid}",
                "upstream": {k: item[k] for k in sorted(item)},
            }
        )
    metadata = ["dataset.json", "dataset_multiconcept.json"]
    metadata += sorted(f"prompts/{p.name}" for p in (src / "prompts").glob("*.txt"))
    return {
        "files": [_entry(src, rel) for rel in metadata],
        "prompt_sets": dict(sorted(prompt_sets.items())),
        "concepts": concepts,
    }


def dumps(obj: Any, indent: int = 0, width: int = 150) -> str:
    """JSON with one short object or list per line (file entries stay on one line), UTF-8 kept."""
    flat = json.dumps(obj, ensure_ascii=False)
    if not isinstance(obj, (dict, list)) or len(flat) + indent <= width or not obj:
        return flat
    pad = " " * (indent + 1)
    if isinstance(obj, dict):
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)}: {dumps(v, indent + 1, width)}" for k, v in obj.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{dumps(v, indent + 1, width)}" for v in obj]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


BUILDERS = {"dreambench": dreambench_fields, "customconcept101": customconcept101_fields}


def refreshed(manifest: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``manifest`` with ``fields`` replaced (key order of the manifest kept)."""
    out = copy.deepcopy(manifest)
    for key, value in fields.items():
        out[key] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of the tool; returns the exit code (1 when ``--check`` finds a difference)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.data.build", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("suite", choices=sorted(BUILDERS))
    parser.add_argument("--from", dest="src", required=True, type=Path, help="local upstream copy")
    parser.add_argument("--manifest", type=Path, help="manifest file (default: data_manifests/<suite>.json)")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--check", action="store_true", help="exit 1 if the manifest differs from the copy")
    action.add_argument("--write", action="store_true", help="rewrite the manifest's upstream-derived fields")
    args = parser.parse_args(argv)
    path = args.manifest or Path(__file__).resolve().parents[2] / "data_manifests" / f"{args.suite}.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    new = refreshed(manifest, BUILDERS[args.suite](args.src))
    if args.check:
        diff = [k for k in new if new[k] != manifest.get(k)]
        print(f"{path}: {'differs in ' + ', '.join(diff) if diff else 'matches'} {args.src}")
        return 1 if diff else 0
    path.write_text(dumps(new) + "\n", encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
