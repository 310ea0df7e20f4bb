"""Would training a method's concepts together be faster? ``python -m benchmark.perf.concept_batching``.

docs/COSTS.md found that training runs at 11–31% of this core's peak because one optimizer step is a UNet
forward and backward on 2–4 latents of 16², where per-operator overhead dominates, and named the remedy:
train the suite's concepts of one method as one batched step, each concept its own trainable tensors, the
base weights shared. This measures that remedy before anything is built on it. For each method whose
trainable tensors all live in the UNet and whose UNet call is the plain one (no attention processors with
per-call state), it builds one trainer per toy concept as ``overfit-bench run`` does (the profile's tuned
config, the concept's own training data; seed i for the i-th concept, so that the concepts' draws differ as
their images do) and times, in CPU seconds on one torch thread:

- *one by one*: every concept's :meth:`~baselines.training.Trainer.train_step`, as training runs today;
- *together*: the same steps as one call — the concepts' trainable tensors stacked, the UNet evaluated once
  under :func:`torch.func.vmap` of :func:`torch.func.functional_call` (so the shared base weights see one
  large batch and each concept's tensors only its own rows), the sum of the per-concept losses
  back-propagated once, then each concept's own clipping, optimizer and schedule
  (:meth:`~baselines.training.Trainer.apply_gradients`), unchanged.

Before timing, the gradients of one batch per concept are computed both ways from the same batches; they
may differ only by the rounding of the batched kernels, and the largest difference relative to the
largest gradient of its tensor is reported beside the times. A method where vmap fails is reported with the error, not skipped silently.
Nothing here changes how ``overfit-bench run`` trains. Writes ``benchmark/perf/concept-batching-toy.json``.
"""

from __future__ import annotations

import datetime as dt
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "concept-batching-toy.json"
METHODS = ("dreambooth", "dreambooth-lora", "dora", "lokr", "oft")
NOT_MEASURED = {
    "infusion": "its UNet call installs attention processors with per-call state (the dual stream)",
    "infusion-single": "its UNet call installs attention processors with per-call state",
    "infusion-kv": "its UNet call installs attention processors with per-call state",
    "infusion-released": "its UNet call installs attention processors with per-call state",
    "custom-diffusion": "its UNet call installs attention processors with per-call state",
    "textual-inversion": "its trainable tensor is in the text encoder (its frozen UNet would batch by concatenation, not built)",
}


def _median_cpu(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return sorted(times)[len(times) // 2]


def _draw(trainers: list[Any], datas: list[Any]) -> list[Any]:
    from baselines.training import sample_batch

    for tr in trainers:
        if tr.cfg.grad_accum != 1:
            raise ValueError("concept batching: grad_accum must be 1")
    return [
        sample_batch(d, tr.cfg, tr.generator, tr.num_timesteps) for tr, d in zip(trainers, datas, strict=True)
    ]


def backward_together(trainers: list[Any], batches: list[Any]) -> list[float]:
    """Every trainer's loss on its batch and its gradients, the UNet forward and backward as one vmapped
    call. Returns the losses.

    Every trainer must wrap a pipeline whose trainable tensors are all parameters of its UNet and whose
    UNets differ only in those tensors (the first trainer's UNet is the one evaluated).

    Raises:
        ValueError: a trainable tensor outside the UNet.
    """
    import torch
    from torch.func import functional_call, vmap

    unet = trainers[0].pipe.unet
    own = {name for name, _ in unet.named_parameters()}
    for tr in trainers:
        outside = sorted(set(tr.params) - own)
        if outside:
            raise ValueError(f"concept batching: trainable tensors outside the UNet: {outside[:3]}")
    noisy, steps, targets, contexts = [], [], [], []
    for tr, batch in zip(trainers, batches, strict=True):
        z, t, target = tr.inputs(batch)
        with torch.no_grad():
            ctx = tr.pipe.encode_prompts(batch.prompts).embeddings
        noisy.append(z)
        steps.append(t)
        targets.append(target)
        contexts.append(ctx.to(z.dtype))
    names = list(trainers[0].params)
    stacked = {n: torch.stack([tr.params[n] for tr in trainers]) for n in names}

    def predict(p: dict[str, Any], z: Any, t: Any, ctx: Any) -> Any:
        return functional_call(unet, p, (z, t), {"encoder_hidden_states": ctx}, strict=False).sample

    preds = vmap(predict, randomness="different")(
        stacked, torch.stack(noisy), torch.stack(steps), torch.stack(contexts)
    )
    losses = [tr.loss_of(preds[i], targets[i], batches[i]) for i, tr in enumerate(trainers)]
    torch.stack(losses).sum().backward()
    return [float(loss.detach()) for loss in losses]


def together_step(trainers: list[Any], datas: list[Any]) -> list[float]:
    """One optimizer step of every trainer (:func:`backward_together`, then each trainer's own clipping,
    optimizer and schedule, unchanged)."""
    losses = backward_together(trainers, _draw(trainers, datas))
    return [tr.apply_gradients(loss) for tr, loss in zip(trainers, losses, strict=True)]


def gradient_difference(trainers: list[Any], datas: list[Any]) -> float:
    """The largest difference between the gradients of one batch per trainer computed one by one and
    together, relative to the largest gradient of its tensor (the batches drawn once; nothing stepped)."""
    batches = _draw(trainers, datas)
    alone = []
    for tr, batch in zip(trainers, batches, strict=True):
        with tr.pipe.session():
            tr.loss(batch).backward()
        alone.append({k: v.grad.detach().clone() for k, v in tr.params.items() if v.grad is not None})
        tr.optimizer.zero_grad(set_to_none=True)
    with trainers[0].pipe.session():
        backward_together(trainers, batches)
    worst = 0.0
    for tr, ref in zip(trainers, alone, strict=True):
        for k, g in ref.items():
            scale = float(g.abs().max())
            got = tr.params[k].grad
            if got is None:  # a tensor the vmapped call never reached (a name functional_call ignored)
                raise ValueError(f"concept batching: no gradient for {k!r} from the batched call")
            if scale > 0:
                worst = max(worst, float((got - g).abs().max()) / scale)
        tr.optimizer.zero_grad(set_to_none=True)
    return worst


def measure(repeats: int = 7) -> dict[str, Any]:
    import torch

    import baselines
    from baselines import load_method
    from baselines.method import concept_info, frozen
    from baselines.models import components_of
    from baselines.training import TrainConfig, Trainer
    from benchmark import stages
    from benchmark.cache import StageCache
    from benchmark.context import RunContext
    from benchmark.settings import settings_for
    from benchmark.suites import load_suite, select_concepts

    settings = settings_for("toy")
    torch.set_num_threads(int(settings.torch_threads or 1))
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="overfit-bench-batching-") as tmp:
        root = Path(tmp)
        suite = load_suite("toy", None, cache=root / "cache")
        ctx = RunContext(
            suite=suite,
            settings=settings,
            cache=StageCache(root / "cache"),
            run_dir=root / "run",
            progress=False,
        )
        concepts = select_concepts(suite, None)
        comps = components_of(ctx.base_components())
        for name in METHODS:
            handle = load_method(name)
            method = baselines.get_method(name)
            cfg = method.resolve_config(stages.method_config(ctx, handle))
            tcfg = TrainConfig.from_config(cfg)
            with frozen(comps):
                sets = []
                for _ in range(2):  # one set trains one by one, the other together, from the same state
                    trainers, datas = [], []
                    for i, concept in enumerate(concepts):
                        info = concept_info(concept)
                        custom = method.customize(comps, cfg, info.class_noun, None, seed=i)
                        datas.append(method._training_data(comps, cfg, info, False, root / "work" / name))
                        trainers.append(Trainer(custom.pipeline, custom.params, tcfg, seed=i))
                    sets.append((trainers, datas))
                (one, one_data), (tog, tog_data) = sets

                def one_by_one(trainers: list[Any] = one, datas: list[Any] = one_data) -> None:
                    for tr, data in zip(trainers, datas, strict=True):
                        with tr.pipe.session():
                            tr.train_step(data)

                def together(trainers: list[Any] = tog, datas: list[Any] = tog_data) -> None:
                    with trainers[0].pipe.session():
                        together_step(trainers, datas)

                row: dict[str, Any] = {"concepts": len(concepts), "batch_size": tcfg.batch_size}
                try:
                    row["max_gradient_difference"] = gradient_difference(tog, tog_data)
                    together()
                except Exception as exc:  # reported, not hidden: the remedy does not apply as is
                    row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    rows[name] = row
                    continue
                one_by_one()
                row["one_by_one_cpu_s"] = _median_cpu(one_by_one, repeats)
                row["together_cpu_s"] = _median_cpu(together, repeats)
                row["speedup"] = row["one_by_one_cpu_s"] / row["together_cpu_s"]
                rows[name] = row
    return {
        "command": "python -m benchmark.perf.concept_batching",
        "measured": dt.date.today().isoformat(),
        "device": f"CPU ({platform.processor() or platform.machine()}), 1 torch thread, fp32",
        "torch": torch.__version__,
        "repeats": repeats,
        "methods": rows,
        "not_measured": NOT_MEASURED,
    }


def _first_clause(error: str) -> str:
    """An error's type and its message up to the first full stop (vmap's messages run on)."""
    head, _, rest = error.partition(": ")
    return f"{head}: {rest.split('. ')[0].rstrip('.')}"


def render(table: dict[str, Any]) -> str:
    from leaderboard.markdown import table_lines

    lines = []
    for name, r in table["methods"].items():
        if "error" in r:
            lines.append(
                [name, str(r["batch_size"]), "—", "—", "—", f"vmap fails: {_first_clause(r['error'])}"]
            )
            continue
        lines.append(
            [
                name,
                str(r["batch_size"]),
                f"{r['one_by_one_cpu_s']:.3f}",
                f"{r['together_cpu_s']:.3f}",
                f"{r['speedup']:.2f}×",
                f"{r['max_gradient_difference']:.1e}",
            ]
        )
    for name, why in table["not_measured"].items():
        lines.append([name, "", "—", "—", "—", f"not measured: {why}"])
    n = next(iter(table["methods"].values()))["concepts"]
    return "\n".join(
        [
            f"Measured with `{table['command']}` on {table['device']}, torch {table['torch']}, "
            f"{table['measured']}: one optimizer step of each of the toy suite's {n} concepts (CPU seconds, "
            f"median of {table.get('repeats', 7)}).",
            "",
            *table_lines(
                [
                    "method",
                    "batch",
                    f"{n} steps one by one (s)",
                    "together (s)",
                    "speed-up",
                    "largest gradient difference",
                ],
                lines,
                ["left", "right", "right", "right", "right", "left"],
            ),
        ]
    )


def main() -> int:
    table = measure()
    OUT.write_text(json.dumps(table, indent=1) + "\n")
    print(render(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
