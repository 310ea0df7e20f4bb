"""The concept-batching measurement (`python -m benchmark.perf.concept_batching`) compares like with like:
trained together, each concept's gradients and optimizer step are those it gets trained alone (up to the
batched kernels' rounding), and a method it cannot batch is refused with a reason."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

import baselines
from baselines.method import concept_info, frozen
from baselines.models import components_of
from baselines.training import TrainConfig, Trainer, sample_batch
from benchmark.perf.concept_batching import backward_together, gradient_difference, together_step
from tests.baselines_support import concept, fit_config, one_thread, tiny


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with one_thread():
        yield


def _trainers(name: str, n: int = 3) -> tuple[list[Trainer], list]:
    method = baselines.get_method(name)
    comps = components_of(tiny())
    cfg = method.resolve_config(fit_config(name))
    info = concept_info(concept())
    trainers, datas = [], []
    with frozen(comps):
        for i in range(n):
            custom = method.customize(comps, cfg, info.class_noun, None, seed=i)
            with torch.no_grad():  # distinct starting points, so each concept's gradient is its own
                for p in custom.params.values():
                    p.add_(0.01 * (i + 1) * torch.randn(p.shape, generator=torch.Generator().manual_seed(i)))
            datas.append(method._training_data(comps, cfg, info, False, None))
            trainers.append(Trainer(custom.pipeline, custom.params, TrainConfig.from_config(cfg), seed=i))
    return trainers, datas


@pytest.mark.parametrize("name", ["dreambooth-lora", "dora"])
def test_gradients_together_equal_gradients_alone(name: str) -> None:
    trainers, datas = _trainers(name)
    assert gradient_difference(trainers, datas) < 1e-4
    # and the concepts' gradients are not all the same (the comparison is not vacuous)
    batches = [
        sample_batch(d, tr.cfg, tr.generator, tr.num_timesteps) for tr, d in zip(trainers, datas, strict=True)
    ]
    with trainers[0].pipe.session():
        losses = backward_together(trainers, batches)
    assert len(set(losses)) == len(losses)
    first = next(iter(trainers[0].params))
    assert not torch.allclose(trainers[0].params[first].grad, trainers[1].params[first].grad)


def test_a_step_together_moves_each_concept_as_a_step_alone() -> None:
    alone, alone_data = _trainers("dreambooth-lora")
    together, together_data = _trainers("dreambooth-lora")
    for tr, data in zip(alone, alone_data, strict=True):
        with tr.pipe.session():
            tr.train_step(data)
    with together[0].pipe.session():
        together_step(together, together_data)
    for a, t in zip(alone, together, strict=True):
        assert a.step == t.step == 1
        assert a.losses == pytest.approx(t.losses, rel=1e-5)
        lr = a.cfg.effective_lr
        close = total = 0
        for k in a.params:
            gap = (a.params[k] - t.params[k]).abs()
            # Adam's first step moves an element by about ±lr whatever the gradient's size, so an element
            # whose gradient is near 0 may go the other way; nearly all must land on the same value
            close += int((gap <= 1e-3 * lr).sum())
            total += gap.numel()
        assert close >= 0.99 * total


def test_a_trainable_outside_the_unet_is_refused() -> None:
    trainers, datas = _trainers("textual-inversion", n=2)
    with pytest.raises(ValueError, match="outside the UNet"):
        together_step(trainers, datas)
