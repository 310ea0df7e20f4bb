"""The bottom floor for files: image decoding, file hashes, canonical JSON, atomic writes and
``package.module:attribute`` references.

Every package may import this module (``metrics`` and ``baselines`` included): it imports nothing from
the project, and Pillow and numpy only when an image is read.

Images (also in docs/DECISIONS.md) are decoded by one rule, so training, masks, identity scorers,
feature extraction and integrity checks all see the same pixels:

- The whole file is decoded; a truncated file or a file that is not an image raises
  :class:`ImageLoadError` naming the file. (Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES``
  must stay ``False``.)
- The EXIF orientation tag is applied (``ImageOps.exif_transpose``), so width/height are as displayed.
- Alpha (RGBA, LA, PA, P with a transparent colour, premultiplied variants) is composited onto
  opaque white: transparent pixels have no defined colour, and white is how product shots are shown.
- Palette (P) and grayscale (L, 1-bit) are expanded to RGB; CMYK/YCbCr/LAB/HSV use Pillow's
  conversion (no ICC colour management: pixel values are taken as sRGB).
- 16-bit grayscale (I;16*) keeps the high byte of each sample (``v >> 8``, so 65535 → 255), the same
  reduction Pillow applies to 16-bit RGB(A) PNGs at decode time; Pillow's own I;16→L conversion
  clips everything above 255 to white, which we never use. 32-bit integer images (mode I) are
  accepted only if all values lie in 0..65535 and are then treated as 16-bit.
- Floating-point images (mode F) are rejected: they have no agreed display range.
- An 8-bit RGB file without an orientation tag comes back with its pixels unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import pkgutil
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageLoadError",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "canonical_json",
    "image_size",
    "is_image_name",
    "open_gray",
    "open_rgb",
    "resolve",
    "sha256_file",
]

# ------------------------------------------------------------------------------------------ images

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_DIRECT_MODES = frozenset({"1", "L", "CMYK", "YCbCr", "LAB", "HSV"})
# EXIF orientations 5..8 turn the stored image by 90° (with or without a mirror)
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112


class ImageLoadError(ValueError):
    """A file is not a decodable image (truncated, not an image, unsupported pixel format)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: unreadable image ({reason})")


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image suffixes that imports accept (case-insensitive)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def open_rgb(source: str | os.PathLike[str] | Image.Image) -> Image.Image:
    """Decode an image file fully (or take an in-memory image) and return it upright as 8-bit RGB,
    by the rules in the module docstring.

    Returns:
        A new, loaded ``PIL.Image.Image`` in mode ``RGB``, detached from any file.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageLoadError: the file is truncated, not an image, or has an unsupported pixel format.
        TypeError: ``source`` is neither a path nor a PIL image.
    """
    from PIL import Image, ImageOps

    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source), Path("<in-memory image>"))
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected an image path or a PIL image, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            return _to_rgb(ImageOps.exif_transpose(im), path)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageLoadError(path, f"{type(err).__name__}: {err}") from err


def open_gray(source: str | os.PathLike[str] | Image.Image) -> Image.Image:
    """:func:`open_rgb`, then reduced to one 8-bit channel (mode ``L``, ITU-R 601 luma) — how masks are
    read. A grayscale file keeps its values exactly (R = G = B reduces to the same value).

    Raises:
        The errors of :func:`open_rgb`.
    """
    return open_rgb(source).convert("L")


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` of an image file as displayed (EXIF orientation applied), read from the
    header without decoding the pixels.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageLoadError: the file is not an image.
    """
    from PIL import Image

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such image file")
    try:
        with Image.open(p) as im:
            width, height = im.size
            turned = im.getexif().get(_ORIENTATION_TAG) in _QUARTER_TURNS
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageLoadError(p, f"{type(err).__name__}: {err}") from err
    return (height, width) if turned else (width, height)


def _to_rgb(im: Image.Image, path: Path) -> Image.Image:
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im  # already a new image: exif_transpose returns a copy
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode == "P" or mode in _DIRECT_MODES:
        return im.convert("RGB")
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        import numpy as np

        arr = np.asarray(im).astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ImageLoadError(
                path, f"mode {mode} values outside 0..65535 (min {arr.min()}, max {arr.max()})"
            )
        return Image.fromarray((arr >> 8).astype(np.uint8)).convert("RGB")
    raise ImageLoadError(path, f"unsupported pixel format (mode {mode}); expected an 8/16-bit raster image")


# ---------------------------------------------------------------------------------- hashes and JSON


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in chunks).

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def canonical_json(obj: Any) -> str:
    """The one canonical JSON text that hashes are taken over: sorted keys, no whitespace, non-ASCII
    characters as themselves (hash its UTF-8 bytes), NaN and infinities refused.

    Raises:
        TypeError: a value JSON cannot hold.
        ValueError: a NaN or infinite float.
    """
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# ---------------------------------------------------------------------------------- atomic writes


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Create or replace ``path`` so that no reader ever sees a partial file: ``write(tmp)`` fills a
    temporary file next to it, which is flushed to disk and renamed over ``path`` in one step. When
    ``write`` raises, the temporary file is removed and ``path`` is left as it was.

    The file gets the usual permissions (``0o666`` less the umask), not ``mkstemp``'s private ``0o600``.

    Returns:
        ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`). Returns the path."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 with ``\\n`` line ends to ``path`` atomically. Returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: str | os.PathLike[str], obj: Any, *, indent: int = 2, sort_keys: bool = True
) -> Path:
    """Write ``obj`` as indented JSON plus a newline to ``path`` atomically. Returns the path.

    Raises:
        TypeError: a value JSON cannot hold (nothing is written).
    """
    return atomic_write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys) + "\n")


# ------------------------------------------------------------------------------------- references

_REF = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def resolve(ref: str, what: str = "object") -> Any:
    """The object a ``package.module:attribute`` reference names (the module is imported now, with
    :func:`pkgutil.resolve_name`); ``attribute`` may be dotted (``module:Class.method``).

    Raises:
        ValueError: a malformed reference, a module that does not import, or a missing attribute; the
            one-line message names ``what`` and the reference.
    """
    if not isinstance(ref, str) or not _REF.match(ref):
        raise ValueError(f"{what} {ref!r} is not a reference of the form 'package.module:attribute'")
    module, _, attr = ref.partition(":")
    try:
        return pkgutil.resolve_name(ref)
    except ImportError as err:
        raise ValueError(f"{what} {ref!r} cannot be imported: {err}") from err
    except AttributeError as err:
        if module not in sys.modules:  # raised while importing the module, not a missing attribute
            raise
        raise ValueError(
            f"{what} {ref!r} cannot be imported: module {module!r} has no attribute {attr!r}"
        ) from err
