"""Reference-image loading with one documented conversion to 8-bit RGB.

Rules (also in docs/DECISIONS.md):

- The whole file is decoded; a truncated file or a file that is not an image raises
  :class:`ImageLoadError` naming the file. (Pillow's global ``ImageFile.LOAD_TRUNCATED_IMAGES``
  must stay ``False``; suite images are checksum-verified before they are read anyway.)
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
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from benchmark.data.errors import ImageLoadError

if TYPE_CHECKING:
    from PIL import Image

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_DIRECT_MODES = frozenset({"1", "L", "CMYK", "YCbCr", "LAB", "HSV"})


def is_image_name(name: str) -> bool:
    """Whether a file name has one of the image suffixes that imports accept (case-insensitive)."""
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | Path) -> Image.Image:
    """Decode an image file fully and return it as 8-bit RGB (see the module docstring for the rules).

    Returns:
        A loaded ``PIL.Image.Image`` in mode ``RGB``, detached from the file.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageLoadError: the file is truncated, not an image, or has an unsupported pixel format.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im.load()
            upright = ImageOps.exif_transpose(im)
            return _to_rgb(upright, path)
    except ImageLoadError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageLoadError(path, f"{type(err).__name__}: {err}") from err


def _to_rgb(im: Image.Image, path: Path) -> Image.Image:
    from PIL import Image

    mode = im.mode
    if mode == "RGB":
        return im.copy()
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
        gray = (arr >> 8).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    raise ImageLoadError(path, f"unsupported pixel format (mode {mode}); expected an 8/16-bit raster image")
