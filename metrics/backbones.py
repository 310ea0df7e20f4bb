"""Feature backbones for CLIP-T / CLIP-I / DINO / W2: open_clip CLIP and timm DINO.

Weights come from a local file or from the Hugging Face cache, never from the network: a backbone
whose weights are not on disk raises :class:`BackboneUnavailable` naming the file to fetch. The
resolved preprocessing is part of a backbone's identity (:meth:`Backbone.identity`) and is recorded
with every result.

Tiny architectures (``tiny-clip``, ``tiny-dino``) with random weights from a fixed seed exist for
tests and the smoke suite.

A backbone this module does not know is served by a loader the caller names (``loader=
"package.module:function"``, called with :func:`load_backbone`'s arguments and returning a
:class:`Backbone`); a suite names it in its evaluation profile. Importing this module imports neither
open_clip nor timm.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from benchmark.io import open_rgb, resolve, sha256_file

log = logging.getLogger(__name__)

DEFAULT_CLIP = ("ViT-B-32", "openai")
DEFAULT_DINO = ("vit_small_patch16_224.dino", "dino")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# timm architecture + keyword overrides for the DINO slot.
_DINO_ARCHS: dict[str, tuple[str, dict[str, Any]]] = {
    "vit_small_patch16_224.dino": ("vit_small_patch16_224", {}),
    "tiny-dino": (
        "vit_small_patch16_224",
        dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2),
    ),
}
_TINY_CLIP_CONFIGS = ("tiny-clip",)
ImageInput = Any  # a PIL image, a path, or a preprocessed tensor batch


class BackboneUnavailable(RuntimeError):
    """The requested weights are neither a local file nor in the Hugging Face cache."""


@dataclass
class Backbone:
    """A loaded feature extractor with its resolved preprocessing.

    ``kind`` is ``"clip"`` or ``"dino"``; ``weights`` is the pretrained tag, ``file:<sha256 prefix>``
    for a local file, or ``random(seed=S)``.
    """

    kind: str
    name: str
    weights: str
    model: Any  # an nn.Module: open_clip CLIP, timm ViT, or an extra loader's model
    preprocess: Callable[[Any], torch.Tensor]
    preprocess_desc: str
    tokenizer: Any = None
    context_length: int | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def identity(self) -> dict[str, str]:
        """Name, weights and preprocessing: everything about the backbone that can move a number."""
        return {
            "kind": self.kind,
            "name": self.name,
            "weights": self.weights,
            "preprocess": self.preprocess_desc,
        }

    @property
    def tag(self) -> str:
        """Short label ``name/weights`` for tables."""
        return f"{self.name}/{self.weights}"

    def to(self, device: str | torch.device) -> Backbone:
        self.device = torch.device(device)
        self.model.to(self.device)
        return self


def _file_tag(path: Path) -> str:
    return f"file:{sha256_file(path)[:16]}"


def _cached_hf_file(repo_id: str, filenames: Sequence[str], what: str, revision: str | None = None) -> Path:
    """Path of the first of ``filenames`` in the local Hugging Face cache at ``revision`` (a commit; None:
    the cached ``main``), with no network access."""
    from huggingface_hub import hf_hub_download

    for fname in filenames:
        try:
            return Path(
                hf_hub_download(repo_id=repo_id, filename=fname, revision=revision, local_files_only=True)
            )
        except Exception:  # not cached (LocalEntryNotFoundError and friends)
            continue
    at = f"@{revision}" if revision else ""
    raise BackboneUnavailable(
        f"weights for {what} are not in the local Hugging Face cache (looked for {repo_id}{at}/"
        f"{' or '.join(filenames)}); nothing is downloaded implicitly. Fetch them once, e.g. "
        f"`huggingface-cli download {repo_id} {filenames[0]}`, or pass a local file."
    )


def snapshot_commit(path: Path) -> str | None:
    """The commit a file of the Hugging Face cache belongs to (``.../snapshots/<commit>/...``), if any."""
    parts = path.parts
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def _tag(weights: str, path: Path) -> str:
    """A weights tag that names the commit it was loaded at, e.g. ``openai@a6f597a30f7b``: rows computed
    with other weights then never share an identity with these."""
    commit = snapshot_commit(path)
    return f"{weights}@{commit[:12]}" if commit else weights


def _register_tiny_clip(name: str) -> None:
    import open_clip

    if name in open_clip.list_models():
        return
    ref = resources.files("metrics") / "configs" / f"{name}.json"
    with resources.as_file(ref) as path:
        open_clip.add_model_config(path)


def load_clip(
    name: str = DEFAULT_CLIP[0],
    weights: str | Path | None = DEFAULT_CLIP[1],
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    revision: str | None = None,
) -> Backbone:
    """Load an open_clip model by architecture name and weights tag or local file (a tag's weights at the
    Hugging Face ``revision``, a commit; None: the cached ``main``; the tag records the commit).

    Args:
        name: open_clip architecture (``ViT-B-32``, ``ViT-B-32-quickgelu``, ``tiny-clip``, ...).
        weights: a pretrained tag (``openai``: resolved in the HF cache only), a local checkpoint
            file, or None for random weights drawn with ``seed``.
        device: where the model runs.

    Raises:
        BackboneUnavailable: the tag's weights are not cached locally.
        ValueError: unknown architecture or tag.
    """
    import open_clip

    if name in _TINY_CLIP_CONFIGS:
        _register_tiny_clip(name)
    if name not in open_clip.list_models():
        raise ValueError(f"unknown open_clip architecture {name!r}")
    quick_gelu = False
    if weights is None:
        torch.manual_seed(seed)
        tag, file = f"random(seed={seed})", None
    elif Path(str(weights)).is_file():
        file = Path(str(weights))
        tag = _file_tag(file)
    else:
        cfg = open_clip.get_pretrained_cfg(name, str(weights))
        if not cfg:
            raise ValueError(f"open_clip has no weights tag {weights!r} for {name!r}")
        quick_gelu = bool(cfg.get("quick_gelu", False))
        hub = cfg.get("hf_hub", "")
        if not hub:
            raise BackboneUnavailable(
                f"{name}/{weights} has no Hugging Face entry; pass a local file instead"
            )
        repo_id, fname = hub.rstrip("/").rsplit("/", 1) if not hub.endswith("/") else (hub.rstrip("/"), "")
        names = [fname] if fname else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        file = _cached_hf_file(repo_id, names, f"CLIP {name}/{weights}", revision)
        tag = _tag(str(weights), file)
    with _quiet_random_init(weights is None):
        model, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=str(file) if file else None, force_quick_gelu=quick_gelu, device=device
        )
    model.eval()
    arch = f"{name}-quickgelu" if quick_gelu and not name.endswith("-quickgelu") else name
    tokenizer = open_clip.get_tokenizer(name)
    return Backbone(
        kind="clip",
        name=arch,
        weights=tag,
        model=model,
        preprocess=preprocess,
        preprocess_desc=" ".join(repr(preprocess).split()),
        tokenizer=tokenizer,
        context_length=int(getattr(tokenizer, "context_length", 77)),
        device=torch.device(device),
    )


class _NoRandomInitWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "No pretrained weights loaded" not in record.getMessage()


@contextlib.contextmanager
def _quiet_random_init(active: bool) -> Iterator[None]:
    """Drop open_clip's "No pretrained weights loaded" warning when random weights are what was asked for."""
    if not active:
        yield
        return
    quiet = _NoRandomInitWarning()
    loggers = [logging.getLogger(), logging.getLogger("open_clip")]
    for lg in loggers:
        lg.addFilter(quiet)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(quiet)


def dino_transform(image_size: int = 224) -> tuple[Callable[[Any], torch.Tensor], str]:
    """DINO protocol: shorter side to size·256/224 bicubic, center crop, ImageNet mean/std."""
    from torchvision import transforms as T

    resize = round(image_size * 256 / 224)
    tf = T.Compose(
        [
            T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(image_size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    desc = f"resize_shorter={resize} bicubic; center_crop={image_size}; imagenet mean/std"
    return tf, desc


def load_dino(
    name: str = DEFAULT_DINO[0],
    weights: str | Path | None = DEFAULT_DINO[1],
    *,
    device: str | torch.device = "cpu",
    seed: int = 0,
    revision: str | None = None,
) -> Backbone:
    """Load a DINO ViT through timm: ``weights`` is ``"dino"`` (HF cache only, at ``revision``; the tag
    records the commit), a local file, or None.

    Raises:
        BackboneUnavailable: weights not cached locally.
        ValueError: unknown architecture.
    """
    import timm

    if name not in _DINO_ARCHS:
        raise ValueError(f"unknown DINO backbone {name!r}; known: {', '.join(_DINO_ARCHS)}")
    arch, overrides = _DINO_ARCHS[name]
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False, num_classes=0, **overrides)
    if weights is None:
        tag = f"random(seed={seed})"
    else:
        path = Path(str(weights))
        if not path.is_file():
            if name != "vit_small_patch16_224.dino" or str(weights) != "dino":
                raise ValueError(f"DINO weights {weights!r} are neither a file nor the tag 'dino'")
            files = ["model.safetensors", "pytorch_model.bin"]
            path = _cached_hf_file(f"timm/{name}", files, f"DINO {name}", revision)
            tag = _tag("dino", path)
        else:
            tag = _file_tag(path)
        model.load_state_dict(_read_state_dict(path), strict=True)
    model.eval().to(device)
    size = int(overrides.get("img_size", 224))
    tf, desc = dino_transform(size)
    return Backbone(
        kind="dino",
        name=name,
        weights=tag,
        model=model,
        preprocess=tf,
        preprocess_desc=desc,
        device=torch.device(device),
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


def load_backbone(
    kind: str,
    name: str,
    weights: str | Path | None,
    *,
    device: str = "cpu",
    seed: int = 0,
    loader: str | None = None,
    revision: str | None = None,
) -> Backbone:
    """Load a backbone: with ``loader`` (``package.module:function``) that function builds it; else
    :func:`load_clip` or :func:`load_dino` by ``kind`` (hub weights at ``revision``).

    Raises:
        ValueError: unknown kind or name, or a loader that cannot be imported.
        BackboneUnavailable: the weights are not on disk.
    """
    if kind not in ("clip", "dino"):
        raise ValueError(f"unknown backbone kind {kind!r}; expected 'clip' or 'dino'")
    if loader:
        build = resolve(loader, f"backbone {name!r} loader")
        backbone: Backbone = build(kind, name, weights, device=device, seed=seed)
        return backbone
    if kind == "clip":
        return load_clip(name, weights, device=device, seed=seed, revision=revision)
    return load_dino(name, weights, device=device, seed=seed, revision=revision)


def _to_batches(backbone: Backbone, images: ImageInput, batch_size: int) -> list[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        if images.ndim != 4:
            raise ValueError(
                f"a tensor of images must be [N, 3, H, W] preprocessed, got {tuple(images.shape)}"
            )
        return list(images.split(batch_size))
    items = list(images)
    return [
        torch.stack([backbone.preprocess(open_rgb(x)) for x in items[i : i + batch_size]])
        for i in range(0, len(items), batch_size)
    ]


def extract_image_features(
    backbone: Backbone,
    images: ImageInput,
    *,
    batch_size: int = 32,
    device: str | torch.device | None = None,
    normalize: bool = True,
) -> torch.Tensor:
    """Image embeddings [N, d] (float32, CPU), L2-normalised unless ``normalize=False``.

    ``images``: PIL images or paths (preprocessed with the backbone's own transform), or an
    already-preprocessed tensor [N, 3, H, W].

    Raises:
        ValueError: no images, an unreadable image, or non-finite features.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = torch.device(device) if device is not None else backbone.device
    backbone.model.to(dev)
    feats: list[torch.Tensor] = []
    with torch.inference_mode():
        for batch in _to_batches(backbone, images, batch_size):
            x = batch.to(dev, non_blocking=True)
            out = backbone.model.encode_image(x) if backbone.kind == "clip" else backbone.model(x)
            feats.append(out.float().cpu())
    if not feats:
        raise ValueError("no images given")
    result = torch.cat(feats)
    if not torch.isfinite(result).all():
        raise ValueError("backbone produced NaN/inf image features")
    return torch.nn.functional.normalize(result, dim=-1) if normalize else result


def count_text_tokens(backbone: Backbone, text: str) -> int:
    """Tokens the text encoder would see, including start/end tokens."""
    tok = backbone.tokenizer
    if hasattr(tok, "encode"):
        return len(tok.encode(text)) + 2
    raise ValueError(f"backbone {backbone.tag} has a tokenizer that cannot count tokens")


def extract_text_features(
    backbone: Backbone,
    texts: Sequence[str],
    *,
    allow_truncation: bool = False,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> tuple[torch.Tensor, int]:
    """L2-normalised text embeddings [N, d] and the number of texts that were truncated.

    Raises:
        ValueError: a text longer than the context when ``allow_truncation`` is False (the message
            names it and its token count), no texts, or a non-CLIP backbone.
    """
    if backbone.kind != "clip" or backbone.tokenizer is None:
        raise ValueError(f"backbone {backbone.tag} has no text encoder")
    texts = list(texts)
    if not texts:
        raise ValueError("no texts given")
    ctx = backbone.context_length or 77
    n_trunc = 0
    for text in texts:
        n_tok = count_text_tokens(backbone, text)
        if n_tok > ctx:
            if not allow_truncation:
                raise ValueError(
                    f"prompt has {n_tok} tokens, more than the text encoder's context of {ctx}: {text!r} "
                    "(pass allow_truncation=True to truncate and count it)"
                )
            n_trunc += 1
    dev = torch.device(device) if device is not None else backbone.device
    backbone.model.to(dev)
    feats = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            tokens = backbone.tokenizer(texts[i : i + batch_size]).to(dev)
            feats.append(backbone.model.encode_text(tokens).float().cpu())
    out = torch.cat(feats)
    if not torch.isfinite(out).all():
        raise ValueError("backbone produced NaN/inf text features")
    return torch.nn.functional.normalize(out, dim=-1), n_trunc
