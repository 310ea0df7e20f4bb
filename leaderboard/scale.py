"""Display scales: how stored values are shown. Rows always store raw values.

A scale is chosen per metric key (``clip_t,clip_i,dino=x100``); every rendered column header and plot
axis names the scale in use, including ``raw``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from metrics.spec import METRICS


@dataclass(frozen=True)
class DisplayScale:
    """A monotone increasing map from stored values to displayed values."""

    name: str
    label: str
    transform: Callable[[float], float]

    def __call__(self, value: float) -> float:
        """Return the displayed value of a stored value."""
        return self.transform(value)


RAW = DisplayScale("raw", "raw", lambda v: v)
SCALES: Mapping[str, DisplayScale] = {
    "raw": RAW,
    "x100": DisplayScale("x100", "×100", lambda v: 100.0 * v),
    # CLIPScore (Hessel et al., 2021) clips each cosine at 0; applied to the aggregated numbers it equals
    # the mean CLIPScore whenever no underlying cosine is negative.
    "clipscore": DisplayScale("clipscore", "2.5·max(cos,0)", lambda v: 2.5 * max(v, 0.0)),
}


def parse_scale_options(options: Iterable[str]) -> dict[str, DisplayScale]:
    """Parse ``KEYS=SCALE`` options, e.g. ``["clip_t,clip_i,dino=x100"]``.

    Returns:
        Metric key -> scale; metrics not named are shown raw.

    Raises:
        ValueError: malformed option, unknown metric key, unknown scale name, or one metric given two
            different scales.
    """
    chosen: dict[str, DisplayScale] = {}
    for option in options:
        keys, sep, name = option.partition("=")
        if not sep or not keys.strip() or not name.strip():
            raise ValueError(f"--scale {option!r}: expected KEYS=SCALE, e.g. clip_t,clip_i,dino=x100")
        name = name.strip()
        if name not in SCALES:
            raise ValueError(f"--scale {option!r}: unknown scale {name!r} (known: {', '.join(SCALES)})")
        for key in (k.strip() for k in keys.split(",")):
            if key not in METRICS:
                raise ValueError(f"--scale {option!r}: unknown metric {key!r} (known: {', '.join(METRICS)})")
            previous = chosen.get(key)
            if previous is not None and previous.name != name:
                raise ValueError(f"--scale: metric {key!r} given two scales ({previous.name}, {name})")
            chosen[key] = SCALES[name]
    return chosen
