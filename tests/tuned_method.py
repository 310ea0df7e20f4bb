"""An outside LoRA-like method for the tuning tests and the issue-26 measurement: the built-in LoRA's
code with rank and alpha 8, given as its own class (``tests.tuned_method:RankEightLoRA``). Its recipe
has no ``toy`` budget, so on the toy suite it gets the profile's default budget until
``overfit-bench tune`` chooses one."""

from __future__ import annotations

from typing import Any, ClassVar

from baselines.lora import DreamBoothLoRA


class RankEightLoRA(DreamBoothLoRA):
    name: ClassVar[str] = "rank8-lora"

    def resolve_config(self, config: Any = None) -> dict[str, Any]:
        cfg = super().resolve_config(config)
        cfg.update(rank=8, lora_alpha=8)
        return cfg


class UnnamedLoRA(DreamBoothLoRA):
    """A subclass that does not name itself: it must not write rows as ``dreambooth-lora``."""
