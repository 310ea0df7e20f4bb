"""The embedded toy suite: a procedural shape world, its ground-truth oracle and its base-model trainer.

Modules (imported lazily; importing this package imports nothing heavy):

- :mod:`benchmark.toy.world` — the world's vocabulary, :class:`~benchmark.toy.world.Scene`, captions,
  the held-out combinations and scene sampling.
- :mod:`benchmark.toy.render` — pixels: ``render(scene, size) -> PIL.Image``.
- :mod:`benchmark.toy.oracle` — a small CNN that reads an image back into its attributes.
- :mod:`benchmark.toy.rulers` — learned toy CLIP / DINO backbones (``toy-contrastive``, ``toy-ssl``) that
  never see the oracle; trained by :mod:`benchmark.toy.train_rulers`, probed by
  :mod:`benchmark.toy.ruler_probe`.
- :mod:`benchmark.toy.train_base` — the reproducible base-model training script
  (``python -m benchmark.toy.train_base``).
"""
