"""Learned toy backbones ("rulers") for the toy suite's CLIP and DINO slots, trained without the oracle.

The oracle-backed ``toy-clip`` / ``toy-dino`` of :mod:`benchmark.toy.backbones` grade a metric with
the ruler that defines the ground truth. The two backbones here never see the oracle, its labels or
its weights; :mod:`benchmark.toy.train_rulers` trains them on renders of the toy world:

- ``toy-contrastive`` (kind ``"clip"``): an image tower (small CNN) and a text tower (word embeddings,
  positions, a two-layer transformer) trained with a symmetric InfoNCE loss on (render, caption)
  pairs; both project to a shared ``embed_dim``-dim space.
- ``toy-ssl`` (kind ``"dino"``): the same kind of image tower trained self-supervised (SimCLR's
  NT-Xent on two augmented views); its features are the tower's embedding (the projection head used
  in training is dropped). :meth:`ImageTower.spatial` gives the last convolutional map.

Neither model has seen the (shape, pattern) pairs of the toy suites' concepts
(:data:`HELD_OUT_PAIRS`): like a real CLIP they know hearts and zigzags, but not the user's concept.
This module never imports :mod:`benchmark.toy.oracle` (``tests/test_rulers.py`` checks it).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from benchmark.io import sha256_file
from benchmark.toy.io import load_torch
from benchmark.toy.world import (
    BACKGROUNDS,
    COLOURS,
    MAX_JITTER,
    PATTERNS,
    POSITIONS,
    RESERVED_PAIRS,
    SHAPES,
    SIZE_RANGE,
    Scene,
)
from metrics.backbones import Backbone, BackboneUnavailable

RULER_VERSION = 1
RULERS: dict[str, str] = {"toy-contrastive": "clip", "toy-ssl": "dino"}
WHICH: dict[str, str] = {"toy-contrastive": "contrastive", "toy-ssl": "ssl"}
CHECKPOINT = "ruler_checkpoint.pt"
SHIPPED = "toy"  # the weights tag that names the checked assets in benchmark/toy/assets/rulers/<name>

# (shape, pattern) pairs no ruler sees in training: the pretraining-reserved pairs plus the pairs of
# every concept of the evaluated suite (data_manifests/toy.json) and the tuning suite (toy-tuning.json).
# tests/test_rulers.py checks that the manifests' concepts are all covered.
HELD_OUT_PAIRS: tuple[tuple[str, str], ...] = tuple(
    sorted(
        RESERVED_PAIRS
        | {
            ("heart", "stripes"),
            ("square", "dots"),
            ("circle", "checker"),
            ("hexagon", "diagonal"),
            ("heart", "zigzag"),
            ("square", "rings"),
            ("hexagon", "zigzag"),
            ("circle", "rings"),
            ("hexagon", "dots"),
            ("heart", "rings"),
        }
    )
)

# Words that captions use besides the world's names, and the prefixes training draws from.
CAPTION_PREFIXES: tuple[str, ...] = ("a photo of", "a picture of", "an image of", "a rendering of")
FUNCTION_WORDS: tuple[str, ...] = ("a", "an", "on", "background", "of", "the", "with", "photo", "picture")
PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
_SPLIT = re.compile(r"[\s,]+")


@functools.lru_cache(maxsize=1)
def vocabulary() -> tuple[str, ...]:
    """The text tower's words: ``[PAD] [UNK] [BOS] [EOS]`` then every word of the world's names, the
    pattern phrases, the caption function words and the prefixes, sorted."""
    names = [*SHAPES, *COLOURS, *BACKGROUNDS, *POSITIONS, *PATTERNS.values(), *FUNCTION_WORDS]
    names += list(CAPTION_PREFIXES)
    words = {w for name in names for w in _SPLIT.split(name.lower()) if w}
    return (PAD, UNK, BOS, EOS, *sorted(words))


class WordTokenizer:
    """Captions → ``LongTensor [N, context_length]``: ``[BOS] words… [EOS] [PAD]…``.

    Text is lowercased and split on whitespace and commas; a word outside :func:`vocabulary`
    (``"sks"``, ``"<new1>"``) becomes ``[UNK]``. A caption of more than ``context_length - 2`` words is
    truncated (:func:`metrics.backbones.count_text_tokens` counts :meth:`encode` plus two, so a caller
    sees the truncation coming).
    """

    def __init__(self, vocab: Sequence[str] | None = None, context_length: int = 32) -> None:
        self.vocab = tuple(vocab) if vocab is not None else vocabulary()
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.context_length = int(context_length)
        if self.context_length < 3:
            raise ValueError(f"WordTokenizer: context_length must be >= 3, got {context_length!r}")

    def words(self, text: str) -> list[str]:
        """The caption's words (lowercase; commas and whitespace separate)."""
        return [w for w in _SPLIT.split(text.lower()) if w]

    def encode(self, text: str) -> list[int]:
        """Word ids of the caption, without start and end tokens and without truncation."""
        unk = self.index[UNK]
        return [self.index.get(w, unk) for w in self.words(text)]

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        ctx = self.context_length
        out = torch.full((len(texts), ctx), self.index[PAD], dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.index[BOS], *self.encode(text)[: ctx - 2], self.index[EOS]]
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out


# ----------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class RulerConfig:
    """Sizes and training settings of a ruler (recorded in every checkpoint; a resume must match).

    ``which`` is ``"contrastive"`` or ``"ssl"``. The image tower: a ``width``-channel stem, three
    stride-2 stages to a 4×4 map of ``4·width`` channels, then a learned linear pooling of that map to
    ``hidden`` dims. The contrastive model projects image and text to ``embed_dim``; the SSL model
    trains through a ``proj_dim`` MLP head that is not exported.
    """

    which: str = "contrastive"
    image_size: int = 32
    width: int = 32
    hidden: int = 256
    embed_dim: int = 64
    text_width: int = 64
    text_layers: int = 2
    text_heads: int = 4
    context_length: int = 32
    proj_dim: int = 128
    temperature: float = 0.2  # NT-Xent temperature (ssl); the contrastive model learns its own
    swap_background_prob: float = 0.0  # ssl: the second render's background is another one this often
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    bank_size: int = 24000
    pattern_prob: float = 0.5
    part_prob: float = 0.6
    prefix_prob: float = 0.3
    max_shift: int = 2
    brightness: float = 0.1
    contrast: float = 0.1
    blur_prob: float = 0.3
    noise_max: float = 0.08
    checkpoint_every: int = 100
    log_every: int = 25

    def __post_init__(self) -> None:
        if self.which not in ("contrastive", "ssl"):
            raise ValueError(f"RulerConfig.which: expected 'contrastive' or 'ssl', got {self.which!r}")
        for name in (
            "image_size",
            "width",
            "hidden",
            "embed_dim",
            "text_width",
            "text_layers",
            "text_heads",
            "context_length",
            "proj_dim",
            "batch_size",
            "bank_size",
            "checkpoint_every",
            "log_every",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"RulerConfig.{name}: expected a positive integer, got {value!r}")
        if self.image_size % 8:
            raise ValueError(f"RulerConfig.image_size: expected a multiple of 8, got {self.image_size}")
        if self.width % 4 or self.text_width % self.text_heads:
            raise ValueError("RulerConfig: width must be a multiple of 4 and text_width of text_heads")
        for name in ("pattern_prob", "part_prob", "prefix_prob", "blur_prob", "swap_background_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"RulerConfig.{name}: expected a probability, got {getattr(self, name)!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RulerConfig:
        """The config from :func:`dataclasses.asdict` output.

        Raises:
            ValueError: unknown keys or invalid values.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"RulerConfig: unknown keys {unknown}")
        return cls(**data)


def default_config(which: str) -> RulerConfig:
    """The shipped training settings of ``"contrastive"`` or ``"ssl"`` (SSL: bigger augmentations, one
    more pixel of translation, blur half the time, NT-Xent temperature 0.1: almost every pair in a batch
    already differs in colour, background or position, so a low temperature is what makes the rare
    negatives that differ only in shape or pattern count).

    Raises:
        ValueError: an unknown ``which``.
    """
    if which == "contrastive":
        return RulerConfig(which="contrastive")
    if which == "ssl":
        return RulerConfig(
            which="ssl",
            max_shift=3,
            brightness=0.15,
            contrast=0.15,
            blur_prob=0.5,
            noise_max=0.1,
            temperature=0.1,
            swap_background_prob=0.5,
        )
    raise ValueError(f"unknown ruler {which!r}; expected 'contrastive' or 'ssl'")


# ----------------------------------------------------------------------------------------------------
# Models


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.GroupNorm(4, cout), nn.GELU())


class _ResStage(nn.Module):
    """A stride-2 conv that changes width, then a residual conv at the new size."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = _conv(cin, cout, 2)
        self.body = _conv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.down(x)
        return h + self.body(h)


class ImageTower(nn.Module):
    """Images [N, 3, S, S] in [-1, 1] → embeddings [N, hidden].

    A stem at full resolution, three residual stride-2 stages down to a 4×4 map of ``4·width``
    channels (:meth:`spatial`), then a learned linear pooling of the flattened map (it keeps where the
    object is, which a global average would mostly lose).
    """

    def __init__(self, image_size: int = 32, width: int = 32, hidden: int = 256) -> None:
        super().__init__()
        self.image_size = image_size
        w = width
        layers: list[nn.Module] = [_conv(3, w), _ResStage(w, 2 * w), _ResStage(2 * w, 4 * w)]
        layers.append(_ResStage(4 * w, 4 * w))
        if image_size != 32:
            layers.append(nn.AdaptiveAvgPool2d(4))
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 16, hidden), nn.LayerNorm(hidden))
        self.channels = 4 * w

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        """The last convolutional feature map [N, 4·width, 4, 4]."""
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.spatial(x))


class _TextBlock(nn.Module):
    """Pre-norm transformer block (bidirectional attention over the non-padding tokens)."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).reshape(n, length, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
        mask = keep[:, None, None, :]  # [N, 1, 1, L]: attend to real tokens only
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.out(att.transpose(1, 2).reshape(n, length, width))
        return x + self.mlp(self.norm2(x))


class TextTower(nn.Module):
    """Token ids [N, L] (L ≤ ``context_length``, 0 = padding) → embeddings [N, width] (mean over the
    non-padding tokens after the transformer)."""

    def __init__(self, vocab_size: int, context_length: int, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.context_length = context_length
        self.tokens = nn.Embedding(vocab_size, width)
        self.positions = nn.Parameter(torch.randn(context_length, width) * 0.02)
        self.blocks = nn.ModuleList(_TextBlock(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.shape[1] > self.context_length:
            raise ValueError(
                f"text tower: expected token ids [N, <= {self.context_length}], got {tuple(ids.shape)}"
            )
        keep = ids != 0
        x = self.tokens(ids) + self.positions[: ids.shape[1]]
        for block in self.blocks:
            x = block(x, keep)
        x = self.norm(x)
        w = keep.unsqueeze(-1).to(x.dtype)
        return (x * w).sum(1) / w.sum(1).clamp(min=1.0)


class ContrastiveRuler(nn.Module):
    """``toy-contrastive``: :class:`ImageTower` + :class:`TextTower`, each projected to ``embed_dim``,
    and a learned temperature (``logit_scale``, CLIP's parametrisation)."""

    def __init__(self, cfg: RulerConfig, vocab_size: int) -> None:
        super().__init__()
        self.image = ImageTower(cfg.image_size, cfg.width, cfg.hidden)
        self.image_proj = nn.Linear(cfg.hidden, cfg.embed_dim)
        self.text = TextTower(vocab_size, cfg.context_length, cfg.text_width, cfg.text_layers, cfg.text_heads)
        self.text_proj = nn.Linear(cfg.text_width, cfg.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        """Image embeddings [N, embed_dim] (not normalised)."""
        return self.image_proj(self.image(x))

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        """Text embeddings [N, embed_dim] (not normalised) of :class:`WordTokenizer` output."""
        return self.text_proj(self.text(ids))

    def spatial(self, x: torch.Tensor) -> torch.Tensor:
        """The image tower's last convolutional map [N, C, 4, 4]."""
        return self.image.spatial(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_image(x)


def build_model(cfg: RulerConfig, *, seed: int | None = None) -> nn.Module:
    """A freshly initialised ruler (``seed``: draw the weights under that seed without touching the
    caller's RNG state). ``"contrastive"`` → :class:`ContrastiveRuler`; ``"ssl"`` → :class:`ImageTower`."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if cfg.which == "contrastive":
            return ContrastiveRuler(cfg, len(vocabulary()))
        return ImageTower(cfg.image_size, cfg.width, cfg.hidden)


# ----------------------------------------------------------------------------------------------------
# Images and scenes


def to_tensor(images: Any, size: int) -> torch.Tensor:
    """Images as float [N, 3, size, size] in [-1, 1]: uint8 arrays [N, H, W, 3] or PIL images
    (``x / 127.5 - 1``); other sizes are resized bilinearly with antialiasing.

    Raises:
        ValueError: an unsupported layout (the message gives the shape seen).
    """
    if isinstance(images, np.ndarray):
        arr = images
    else:
        arr = np.stack([np.asarray(im.convert("RGB"), dtype=np.uint8) for im in images])
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"ruler input: expected uint8 images [N, H, W, 3], got {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


def preprocess_image(image: Any, size: int) -> torch.Tensor:
    """A PIL image → float tensor [3, size, size] in [-1, 1] (bilinear antialiased resize)."""
    return to_tensor([image], size)[0]


def sample_ruler_scenes(
    rng: np.random.Generator,
    n: int,
    *,
    pattern_prob: float = 0.5,
    exclude: Sequence[tuple[str, str]] = HELD_OUT_PAIRS,
    only: Sequence[tuple[str, str]] | None = None,
) -> list[Scene]:
    """Scenes for the rulers: every shape, colour, background and position (uniform; the base model's
    held-out combinations included), size and jitter uniform, ``pattern_prob`` of them carrying one of
    the six patterns allowed for their shape, never a (shape, pattern) pair of ``exclude``.

    With ``only``, every scene wears one of those (shape, pattern) pairs (the concept looks, for
    probing); ``exclude`` is then ignored.

    Raises:
        ValueError: negative ``n`` or ``pattern_prob`` outside [0, 1].
    """
    if n < 0 or not 0.0 <= pattern_prob <= 1.0:
        raise ValueError(f"sample_ruler_scenes: bad n={n!r} or pattern_prob={pattern_prob!r}")
    banned = set(exclude)
    allowed = {s: [p for p in PATTERNS if (s, p) not in banned] for s in SHAPES}
    colours, positions = list(COLOURS), list(POSITIONS)
    scenes = []
    for _ in range(n):
        pattern: str | None
        if only is not None:
            shape, pattern = only[int(rng.integers(len(only)))]
        else:
            shape = SHAPES[int(rng.integers(len(SHAPES)))]
            choices = allowed[shape]
            pattern = choices[int(rng.integers(len(choices)))] if rng.random() < pattern_prob else None
        colour = colours[int(rng.integers(len(colours)))]
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        position = positions[int(rng.integers(len(positions)))]
        size = float(rng.uniform(*SIZE_RANGE))
        jitter = (float(rng.uniform(-MAX_JITTER, MAX_JITTER)), float(rng.uniform(-MAX_JITTER, MAX_JITTER)))
        seed = int(rng.integers(2**31 - 1))
        scenes.append(Scene(shape, colour, background, position, size, jitter, pattern, seed))
    return scenes


# ----------------------------------------------------------------------------------------------------
# Checkpoints and loading


def inference_state(model: nn.Module, cfg: RulerConfig, name: str) -> dict[str, Any]:
    """What an inference checkpoint holds: weights, config, name, vocabulary (contrastive), version."""
    return {
        "name": name,
        "config": asdict(cfg),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "vocab": list(vocabulary()) if cfg.which == "contrastive" else None,
        "version": RULER_VERSION,
    }


def load_ruler_model(path: str | Path, name: str) -> tuple[nn.Module, RulerConfig]:
    """The ruler ``name`` from an inference checkpoint file (or a folder holding ``ruler_checkpoint.pt``),
    in eval mode with gradients off.

    Raises:
        FileNotFoundError: no checkpoint there.
        ValueError: unreadable, made for another ruler, or with another vocabulary.
    """
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    ckpt = load_torch(p)
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{p}: not a ruler checkpoint (no config and model)")
    if ckpt.get("name") != name:
        raise ValueError(f"{p}: a checkpoint of {ckpt.get('name')!r}, not {name!r}")
    cfg = RulerConfig.from_dict(dict(ckpt["config"]))
    if cfg.which == "contrastive" and list(ckpt.get("vocab") or []) != list(vocabulary()):
        raise ValueError(f"{p}: its vocabulary differs from this world's (retrain the ruler)")
    model = build_model(cfg)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as err:
        raise ValueError(f"{p}: weights do not fit the recorded config ({err})") from err
    return model.eval().requires_grad_(False), cfg


def _resolve_weights(name: str, weights: str | Path) -> Path:
    if str(weights) == SHIPPED:
        from benchmark.toy.assets import ruler_checkpoint

        try:
            return ruler_checkpoint(name)
        except FileNotFoundError as err:
            raise BackboneUnavailable(str(err)) from err
    path = Path(weights)
    file = path / CHECKPOINT if path.is_dir() else path
    if not file.is_file():
        raise BackboneUnavailable(
            f"ruler checkpoint {file} does not exist; train one with `python -m benchmark.toy.train_rulers "
            f"--which {WHICH[name]} --out DIR` and pass DIR or DIR/{CHECKPOINT}"
        )
    return file


def load_ruler(
    kind: str,
    name: str,
    weights: str | Path | None,
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
) -> Backbone:
    """Load ``toy-contrastive`` (kind ``"clip"``) or ``toy-ssl`` (kind ``"dino"``).

    Args:
        kind: ``"clip"`` or ``"dino"``; must match the name.
        name: the ruler's name.
        weights: ``"toy"`` (the shipped, sha256-checked asset), a checkpoint file or a folder holding
            ``ruler_checkpoint.pt`` (tag ``file:<sha256 prefix>``), or None for the default config with
            random weights drawn with ``seed`` (tag ``random(seed=S)``; the caller's RNG is untouched).
        device: where the model runs.
        seed: seed of the random weights when ``weights`` is None.

    Returns:
        The :class:`~metrics.backbones.Backbone`.

    Raises:
        ValueError: an unknown name (with the closest known one), a kind that does not match it, an
            unreadable checkpoint or one of another ruler; the shipped asset differs from its SHA256SUMS.
        BackboneUnavailable: ``weights`` names no checkpoint on disk (the message names the file).
    """
    if name not in RULERS:
        close = difflib.get_close_matches(name, list(RULERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown toy ruler {name!r}; known: {', '.join(RULERS)}{hint}")
    if kind != RULERS[name]:
        raise ValueError(f"{name} is a {RULERS[name]!r} backbone, not {kind!r}")
    if weights is None:
        cfg = default_config(WHICH[name])
        model = build_model(cfg, seed=seed).eval().requires_grad_(False)
        tag = f"random(seed={seed})"
    else:
        file = _resolve_weights(name, weights)
        model, cfg = load_ruler_model(file, name)
        tag = f"file:{sha256_file(file)[:16]}"
    model.to(device)
    size = cfg.image_size
    tokenizer = WordTokenizer(context_length=cfg.context_length) if kind == "clip" else None
    return Backbone(
        kind=kind,
        name=name,
        weights=tag,
        model=model,
        preprocess=functools.partial(preprocess_image, size=size),
        preprocess_desc=f"toy: resize {size} bilinear antialias, [-1,1]",
        tokenizer=tokenizer,
        context_length=cfg.context_length if tokenizer is not None else None,
        device=torch.device(device),
    )
