"""How much of the toy world the rulers' frozen features carry (informational).

``python -m benchmark.toy.ruler_probe [--n-train N] [--n-test N] [--out FILE]``

For each ruler, a linear probe per attribute (shape, colour, background, position, pattern) is fitted
on frozen, L2-normalised features of freshly rendered ordinary scenes (labels read from the
:class:`~benchmark.toy.world.Scene` objects, never from the oracle) and scored on fresh renders of two
kinds: ordinary scenes, and the held-out concept looks (scenes wearing a (shape, pattern) pair of
:data:`~benchmark.toy.rulers.HELD_OUT_PAIRS`, which no ruler saw in training). For ``toy-contrastive``
the zero-shot accuracy of text prompts per attribute is reported too (``"a heart"`` against the other
shapes, prompt ensembles over the other attributes). Writes ``benchmark/toy/assets/rulers/probe.json``
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from benchmark.io import atomic_write_json
from benchmark.toy.render import render_batch
from benchmark.toy.rulers import HELD_OUT_PAIRS, RULERS, load_ruler, sample_ruler_scenes
from benchmark.toy.world import BACKGROUNDS, COLOURS, PATTERNS, POSITIONS, SHAPES, Scene
from metrics.backbones import Backbone, extract_image_features, extract_text_features

NO_PATTERN = "none"
ATTRIBUTES: Mapping[str, tuple[str, ...]] = {
    "shape": SHAPES,
    "colour": tuple(COLOURS),
    "background": BACKGROUNDS,
    "position": tuple(POSITIONS),
    "pattern": (NO_PATTERN, *PATTERNS),
}
PROBE_FILE = Path(__file__).resolve().parent / "assets" / "rulers" / "probe.json"


def labels(scenes: Sequence[Scene]) -> dict[str, np.ndarray]:
    """Class index per attribute, read from the scenes (pattern ``None`` → ``"none"``)."""
    values: dict[str, Callable[[Scene], str]] = {
        "shape": lambda s: s.shape,
        "colour": lambda s: s.colour,
        "background": lambda s: s.background,
        "position": lambda s: s.position,
        "pattern": lambda s: s.pattern or NO_PATTERN,
    }
    return {k: np.array([ATTRIBUTES[k].index(values[k](s)) for s in scenes]) for k in ATTRIBUTES}


def fit_linear_probe(
    x: torch.Tensor, y: np.ndarray, n_classes: int, *, weight_decay: float = 1e-4, steps: int = 300
) -> Callable[[torch.Tensor], np.ndarray]:
    """Multinomial logistic regression (full-batch L-BFGS on standardised features, L2 penalty).

    Returns:
        A function mapping features to predicted class indices.
    """
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / std
    target = torch.as_tensor(y, dtype=torch.long)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        linear = torch.nn.Linear(z.shape[1], n_classes)
    opt = torch.optim.LBFGS(linear.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(linear(z), target) + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)

    def predict(feats: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return linear((feats - mean) / std).argmax(1).numpy()

    return predict


def _features(backbone: Backbone, scenes: Sequence[Scene]) -> torch.Tensor:
    from benchmark.toy.rulers import to_tensor

    x = to_tensor(render_batch(scenes, 32), 32)
    return extract_image_features(backbone, x, batch_size=256)


def _prompt_sets(attribute: str) -> list[list[str]]:
    """Per class of ``attribute``, the prompts whose mean text embedding stands for it."""
    if attribute == "shape":
        return [[f"a {s}", f"a photo of a {s}"] for s in SHAPES]
    article = {s: "an" if s[0] in "aeiou" else "a" for s in (*SHAPES, *COLOURS)}
    if attribute == "colour":
        return [[f"{article[c]} {c} {s}" for s in SHAPES] for c in COLOURS]
    if attribute == "background":
        return [[f"{article[s]} {s} on a {b} background" for s in SHAPES] for b in BACKGROUNDS]
    if attribute == "position":
        return [[f"{p}, {article[s]} {s}" for s in SHAPES] for p in POSITIONS]
    return [
        [f"{article[s]} {s}" + (f" {PATTERNS[p]}" if p != NO_PATTERN else "") for s in SHAPES]
        for p in ATTRIBUTES["pattern"]
    ]


def zero_shot(backbone: Backbone, feats: torch.Tensor, y: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Zero-shot accuracy per attribute: the class whose prompt ensemble is closest to the image."""
    out = {}
    for attribute in ATTRIBUTES:
        protos = []
        for prompts in _prompt_sets(attribute):
            t, _ = extract_text_features(backbone, prompts)
            protos.append(F.normalize(t.mean(0), dim=0))
        pred = (feats @ torch.stack(protos).T).argmax(1).numpy()
        out[attribute] = float((pred == y[attribute]).mean())
    return out


def probe(backbone: Backbone, *, n_train: int = 3000, n_test: int = 1000, seed: int = 2026) -> dict[str, Any]:
    """Linear-probe accuracy per attribute on ordinary and held-out-concept test scenes (and zero-shot
    accuracy for a CLIP-kind ruler).

    Returns:
        ``{"linear": {"ordinary": {...}, "concept_looks": {...}}, "zero_shot": {...} | None, ...}``.
    """
    train = sample_ruler_scenes(np.random.default_rng([seed, 1]), n_train)
    tests = {
        "ordinary": sample_ruler_scenes(np.random.default_rng([seed, 2]), n_test),
        "concept_looks": sample_ruler_scenes(np.random.default_rng([seed, 3]), n_test, only=HELD_OUT_PAIRS),
    }
    x_train, y_train = _features(backbone, train), labels(train)
    test_feats = {k: (_features(backbone, v), labels(v)) for k, v in tests.items()}
    result: dict[str, Any] = {"linear": {k: {} for k in tests}, "zero_shot": None}
    for attribute, classes in ATTRIBUTES.items():
        predict = fit_linear_probe(x_train, y_train[attribute], len(classes))
        for split, (x, y) in test_feats.items():
            result["linear"][split][attribute] = float((predict(x) == y[attribute]).mean())
    if backbone.kind == "clip":
        result["zero_shot"] = {split: zero_shot(backbone, x, y) for split, (x, y) in test_feats.items()}
    result.update(
        backbone=backbone.identity(),
        feature_dim=int(x_train.shape[1]),
        n_train=n_train,
        n_test=n_test,
        seed=seed,
        chance={k: 1.0 / len(v) for k, v in ATTRIBUTES.items()},
    )
    return result


def markdown(results: Mapping[str, Mapping[str, Any]]) -> str:
    """The probe results as a markdown table (one row per ruler, measure and test split)."""
    head = "| ruler | measure | test scenes | " + " | ".join(ATTRIBUTES) + " |"
    lines = [head, "|" + "---|" * (3 + len(ATTRIBUTES))]
    for name, res in results.items():
        for measure in ("linear", "zero_shot"):
            if not res.get(measure):
                continue
            for split, accs in res[measure].items():
                cells = " | ".join(f"{accs[a]:.3f}" for a in ATTRIBUTES)
                lines.append(
                    f"| {name} | {measure.replace('_', '-')} | {split.replace('_', ' ')} | {cells} |"
                )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module docstring). Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.toy.ruler_probe", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--n-train", type=int, default=3000)
    parser.add_argument("--n-test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=str(PROBE_FILE), help="where to write the JSON results")
    parser.add_argument(
        "--weights",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="probe a checkpoint instead of the shipped asset (repeatable)",
    )
    parser.add_argument("--only", choices=sorted(RULERS), default=None, help="probe one ruler")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    weights: dict[str, str] = dict(w.split("=", 1) for w in args.weights)
    names = [args.only] if args.only else list(RULERS)
    results = {}
    for name in names:
        backbone = load_ruler(RULERS[name], name, weights.get(name, "toy"))
        results[name] = probe(backbone, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    atomic_write_json(args.out, {"held_out_pairs": [list(p) for p in HELD_OUT_PAIRS], "rulers": results})
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
