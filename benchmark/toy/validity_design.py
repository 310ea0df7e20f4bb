"""The validity study's design: which method it over-trains and how far, which rungs form the tuned
budget, the ladder, the attributes the oracle reads and the probe scene, and how a run is labelled: what the
study (:mod:`benchmark.toy.validity`) and its report (:mod:`benchmark.toy.validity_report`) both read."""

from __future__ import annotations

STUDY_METHOD = "dreambooth"
OVERTRAIN_FACTOR = 3
# the main run's tuned budget (rung 1, or null for the base model): the population the study read until
# 2026-12-07; since then it reads every rung of the run and reports this part beside it (docs/DECISIONS.md)
TUNED_RUNGS: tuple[float | None, ...] = (None, 1.0)
# rungs of the over-trained run: ×1, ×2 and ×3 the tuned steps, from one training run (the ladder)
LADDER = (1 / 3, 2 / 3, 1.0)
COPY = "copy"
ATTRS = ("shape", "colour", "background", "position")

PROBE_SCENE = "a red star on a snow background"


def rung_label(method: str, rung: float | None) -> str:
    """A run's label in the study: the method's name at its tuned budget (and for the base model), else
    ``"<method> ×<rung>"``."""
    return method if rung in TUNED_RUNGS else f"{method} ×{rung:g}"
