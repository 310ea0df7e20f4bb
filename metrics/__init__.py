"""Pure measurement: overfitting metrics (LFD, W2) and fidelity metrics (CLIP-T, CLIP-I, DINO).

Importing this package is cheap: it does not import torch backends, open_clip or timm. The numeric
modules are imported on first use (``metrics.wasserstein``, ``metrics.lfd``, ``metrics.similarity``,
``metrics.backbones``).
"""

from metrics.spec import METRICS, MetricSpec, get_metric

__all__ = ["METRICS", "MetricSpec", "get_metric"]
