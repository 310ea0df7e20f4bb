"""The gate's metric tier on committed inputs: every metric recomputed from stored features, identity
scores and noise predictions, which no kernel, thread count or training run can move.

``build`` takes one finished (method, concept) job of a suite from a run's cache and stores, for every
metric of the suite, the inputs the harness passed it — features of the generated, base and reference
images, the identity scores, and for LFD the base samples of a few rows per prompt set with both models'
predictions on the grid (stored as float16) — under ``leaderboard/results/fixtures/``, together with
the values the metrics give on exactly those stored inputs. ``verify`` recomputes every metric from those inputs with the code as it is now and compares:
the computation is float64 on fixed numbers, so the tolerance is tight (:data:`RTOL`). A changed metric
definition fails here: a different LFD grid (count, spacing) asks for predictions the fixture does not
hold and fails naming the timestep; a different weighting, formula or statistic moves the value.

    python -m benchmark.gate.fixture build --suite toy --method dreambooth --cache CACHE   # once
    python -m benchmark.gate.fixture verify                                               # CI
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[2] / "leaderboard" / "results" / "fixtures"
RTOL = 1e-9
"""Relative tolerance of the metric tier: float64 statistics of fixed float32 inputs."""
ATOL = 1e-12
LFD_ROWS = 2
"""Base samples kept per LFD prompt set (the fixture's LFD is over these rows, not the suite's)."""


def _lfd_subset(ref: Any) -> Any:
    keys = list(ref.row_keys) if ref.row_keys is not None else None
    return replace(
        ref,
        z0=ref.z0[:LFD_ROWS].clone(),
        prompts=list(ref.prompts)[:LFD_ROWS],
        row_keys=keys[:LFD_ROWS] if keys is not None else None,
    )


def build(suite: str, method: str, concept: str | None, cache: Path, out: Path = FIXTURES) -> dict[str, Any]:
    """Store the inputs and values of every metric of one finished job (see the module docstring).

    Returns:
        The values, by metric key.
    """
    import tempfile

    import torch
    from safetensors.torch import load_file, save_file

    from baselines import load_method
    from benchmark.jobs import job_context
    from benchmark.jobspec import JobSpec
    from benchmark.scoring import JobInputs, metric_specs
    from benchmark.settings import settings_for
    from benchmark.suites import select_concepts
    from metrics.lfd import PredictionCache
    from metrics.spec import keyword_for

    settings = settings_for(suite)
    if settings.torch_threads:
        torch.set_num_threads(int(settings.torch_threads))
    ctx = job_context(
        JobSpec(
            suite=suite,
            settings=settings,
            cache=Path(cache),
            run_dir=Path(tempfile.mkdtemp(prefix="overfit-bench-fixture-")),
        )
    )
    chosen = select_concepts(ctx.suite, [concept] if concept else None)[0]
    job = JobInputs(ctx, load_method(method), chosen)
    base_job = JobInputs(ctx, load_method("base"), chosen)
    tensors: dict[str, torch.Tensor] = {}
    plain: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for spec in metric_specs(ctx):
        inputs = base_job if spec.reference else job  # a reference metric (W2's floor) is the base model's
        if not all(inputs.provides(ref) for ref in spec.refs):
            continue
        kwargs = {kw: inputs.get(ref, spec) for kw, ref in spec.bindings.items()}
        if "lfd_reference" in kwargs:
            ref = _lfd_subset(kwargs["lfd_reference"])
            # PredictionCache memoises every row it is asked for: what it holds afterwards is the fixture
            base, custom = PredictionCache(ref.base_eps), PredictionCache(kwargs["custom_eps"])
            kwargs = {"custom_eps": custom, "lfd_reference": replace(ref, base_eps=base)}
            result = spec.function()(**kwargs, **dict(spec.options))
            tag = str(spec.options["prompt_set"])
            tensors[f"{tag}/z0"] = ref.z0.detach().to(torch.float32).contiguous()
            tensors[f"{tag}/alphas_cumprod"] = (
                torch.as_tensor(ref.alphas_cumprod).to(torch.float64).contiguous()
            )
            for which, rec in (("base", base), ("custom", custom)):
                for key, value in rec.state_dict().items():
                    tensors[f"{tag}/{which}/{key}"] = value.to(torch.float16).contiguous()
            plain[tag] = {
                "prompts": list(ref.prompts),
                "row_keys": list(ref.row_keys) if ref.row_keys is not None else None,
            }
        else:
            result = spec.function()(**kwargs, **dict(spec.options))
            for kw, value in kwargs.items():
                # stored under the input's own name (``subject_generated_dino``), not the metric's keyword,
                # which two metrics may use for different inputs
                name = keyword_for(spec.bindings[kw])
                if isinstance(value, torch.Tensor):
                    tensors[f"input/{name}"] = value.detach().contiguous()
                elif hasattr(value, "shape"):  # numpy
                    tensors[f"input/{name}"] = torch.as_tensor(value).contiguous()
                else:
                    plain[f"input/{name}"] = value
        values[spec.key] = {"id": spec.id, "harness_value": float(result.value), "n": int(result.n)}
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / f"{suite}-inputs.safetensors"))
    record: dict[str, Any] = {
        "suite": suite,
        "suite_version": ctx.suite.version,
        "method": method,
        "concept": chosen.id,
        "lfd_rows": LFD_ROWS,
        "plain": plain,
        "values": values,
        "rtol": RTOL,
        "atol": ATOL,
        "built_by": f"python -m benchmark.gate.fixture build --suite {suite} --method {method} --concept {chosen.id}",
    }
    # the committed value of each metric is what it gives on the stored inputs (LFD's predictions are
    # stored in float16, so its value differs from the harness's float32 one in the fourth digit)
    for key, got in _recompute(record, load_file(str(out / f"{suite}-inputs.safetensors")), settings).items():
        if isinstance(got, str):
            raise RuntimeError(f"fixture {suite}: {key} cannot be recomputed from the stored inputs: {got}")
        values[key]["value"] = got
    (out / f"{suite}-fixture.json").write_text(json.dumps(record, indent=1) + "\n")
    return values


class FixtureMiss(KeyError):
    """A metric asked for a noise prediction the fixture does not hold (its LFD grid changed)."""


class _Stored:
    """A noise predictor that only answers from stored predictions."""

    def __init__(self, store: dict[str, Any], which: str) -> None:
        from metrics.lfd import PredictionCache

        self.cache = PredictionCache(None)
        self.cache.load_state_dict(store)
        self.which = which

    def __call__(self, z_t: Any, t: Any, prompts: list[str]) -> Any:
        try:
            return self.cache(z_t, t, prompts)
        except KeyError:
            raise FixtureMiss(
                f"the {self.which} model's prediction at t={int(t[0])} for {prompts[0]!r} is not in the fixture: "
                "LFD's timestep grid or noise changed"
            ) from None


def _recompute(record: dict[str, Any], tensors: dict[str, Any], settings: Any) -> dict[str, float | str]:
    """Every stored metric recomputed from the stored inputs with the code and settings as they are now:
    its value, or the reason it could not be computed."""
    import torch

    from benchmark.stages import grid_timesteps
    from metrics.lfd import LFDReference
    from metrics.spec import METRICS, keyword_for

    out: dict[str, float | str] = {}
    for key, expected in record["values"].items():
        spec = METRICS.get(key)
        try:
            if spec is None or spec.id != expected["id"]:
                raise ValueError(
                    f"the fixture recorded {expected['id']}; this package defines {spec.id if spec else 'no ' + key}"
                )
            if "lfd_reference" in spec.inputs:
                tag = str(spec.options["prompt_set"])
                stores = {
                    which: {
                        k.split("/", 2)[2]: v for k, v in tensors.items() if k.startswith(f"{tag}/{which}/")
                    }
                    for which in ("base", "custom")
                }
                ac = tensors[f"{tag}/alphas_cumprod"].to(torch.float64)
                # the grid, seed and weighting as the suite's settings and the code give them now
                ref = LFDReference(
                    z0=tensors[f"{tag}/z0"],
                    prompts=record["plain"][tag]["prompts"],
                    base_eps=_Stored(stores["base"], "base"),
                    alphas_cumprod=ac,
                    timesteps=grid_timesteps(int(ac.numel()), settings),
                    seed=settings.lfd_seed,
                    batch_size=settings.lfd_batch_size,
                    weighting=settings.lfd_weighting,
                    row_keys=record["plain"][tag]["row_keys"],
                )
                result = spec.function()(
                    custom_eps=_Stored(stores["custom"], "custom"), lfd_reference=ref, **dict(spec.options)
                )
            else:
                names = {kw: keyword_for(ref) for kw, ref in spec.bindings.items()}
                kwargs = {
                    kw: tensors[f"input/{name}"]
                    if f"input/{name}" in tensors
                    else record["plain"][f"input/{name}"]
                    for kw, name in names.items()
                }
                result = spec.function()(**kwargs, **dict(spec.options))
            out[key] = float(result.value)
        except (FixtureMiss, ValueError, KeyError) as err:
            out[key] = f"{type(err).__name__}: {err}"
    return out


def verify(suite: str = "toy", folder: Path = FIXTURES) -> list[dict[str, Any]]:
    """Recompute every stored metric from the fixture's inputs; one result per metric with ``ok``.

    Raises:
        FileNotFoundError: no fixture for ``suite``.
    """
    from safetensors.torch import load_file

    from benchmark.settings import settings_for

    record = json.loads((folder / f"{suite}-fixture.json").read_text())
    got = _recompute(record, load_file(str(folder / f"{suite}-inputs.safetensors")), settings_for(suite))
    out: list[dict[str, Any]] = []
    for key, expected in record["values"].items():
        value = got[key]
        entry: dict[str, Any] = {"metric": expected["id"], "expected": expected["value"]}
        if isinstance(value, str):
            entry.update(got=None, ok=False, error=value)
        else:
            entry.update(got=value, ok=abs(value - expected["value"]) <= ATOL + RTOL * abs(expected["value"]))
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmark.gate.fixture", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="store one finished job's metric inputs and values")
    b.add_argument("--suite", default="toy")
    b.add_argument("--method", default="dreambooth")
    b.add_argument("--concept", default=None)
    b.add_argument("--cache", type=Path, required=True, help="the cache of a finished run of the suite")
    v = sub.add_parser("verify", help="recompute every metric from the committed fixture")
    v.add_argument("--suite", default="toy")
    args = parser.parse_args(argv)
    if args.command == "build":
        values = build(args.suite, args.method, args.concept, args.cache)
        for entry in values.values():
            print(f"{entry['id']:<14} {entry['value']!r}")
        return 0
    results = verify(args.suite)
    for r in results:
        status = "ok   " if r["ok"] else "FAIL "
        detail = r.get("error") or f"{r['got']!r} vs fixture {r['expected']!r}"
        print(f"{status}{r['metric']:<14} {detail}")
    failed = [r for r in results if not r["ok"]]
    print(
        f"fixture {args.suite}: {len(results) - len(failed)} of {len(results)} metrics reproduce their committed "
        f"value on the committed inputs (rtol {RTOL:g}, atol {ATOL:g})"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
