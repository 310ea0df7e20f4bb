"""benchmark.io: the one image loader (EXIF orientation, every pixel format to RGB, bad files rejected by
name) and the paths that use it, file hashes, canonical JSON, atomic writes, ``module:attr`` references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmark.io import ImageLoadError, is_image_name, open_rgb


def _pixels(img: Image.Image) -> np.ndarray:
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)


def test_rgb_png_is_returned_unchanged(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(tmp_path / "a.png")
    out = open_rgb(tmp_path / "a.png")
    assert out.size == (7, 5)
    np.testing.assert_array_equal(_pixels(out), arr)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # 32x16 landscape: left half red, right half blue. Orientation 6 means "rotate 90° clockwise to
    # display", so the displayed image is 16x32 portrait with red on top.
    arr = np.zeros((16, 32, 3), dtype=np.uint8)
    arr[:, :16] = (255, 0, 0)
    arr[:, 16:] = (0, 0, 255)
    img = Image.fromarray(arr, "RGB")
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(tmp_path / "rot.jpg", quality=100, exif=exif)
    out = open_rgb(tmp_path / "rot.jpg")
    assert out.size == (16, 32)
    px = _pixels(out)
    assert px[2, 8, 0] > 200 and px[2, 8, 2] < 60  # top: red
    assert px[29, 8, 2] > 200 and px[29, 8, 0] < 60  # bottom: blue


def test_rgba_is_composited_onto_white(tmp_path: Path) -> None:
    arr = np.array([[[255, 0, 0, 128], [0, 255, 0, 0], [0, 0, 255, 255]]], dtype=np.uint8)
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    px = _pixels(open_rgb(tmp_path / "a.png"))
    # half-transparent red over white: red stays 255, green/blue = 255 * (1 - 128/255) ≈ 127
    assert px[0, 0, 0] == 255 and abs(px[0, 0, 1] - 127) <= 1 and abs(px[0, 0, 2] - 127) <= 1
    np.testing.assert_array_equal(px[0, 1], [255, 255, 255])  # fully transparent: white, not green
    np.testing.assert_array_equal(px[0, 2], [0, 0, 255])  # opaque: unchanged


def test_la_is_composited_onto_white(tmp_path: Path) -> None:
    arr = np.array([[[100, 255], [0, 0]]], dtype=np.uint8)
    Image.fromarray(arr, "LA").save(tmp_path / "a.png")
    px = _pixels(open_rgb(tmp_path / "a.png"))
    np.testing.assert_array_equal(px[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(px[0, 1], [255, 255, 255])


def test_palette_with_and_without_transparency(tmp_path: Path) -> None:
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * (256 * 3 - 6))
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "t.png", transparency=0)
    img.save(tmp_path / "o.png")
    px_t = _pixels(open_rgb(tmp_path / "t.png"))
    px_o = _pixels(open_rgb(tmp_path / "o.png"))
    np.testing.assert_array_equal(px_t[0, 0], [255, 255, 255])  # transparent index → white
    np.testing.assert_array_equal(px_t[0, 1], [10, 20, 30])
    np.testing.assert_array_equal(px_o[0, 0], [0, 0, 0])  # no transparency: palette colour
    np.testing.assert_array_equal(px_o[0, 1], [10, 20, 30])


def test_grayscale_and_bilevel_are_replicated(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8), "L").save(tmp_path / "g.png")
    Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8), "L").convert("1").save(tmp_path / "b.png")
    np.testing.assert_array_equal(_pixels(open_rgb(tmp_path / "g.png"))[0], [[0] * 3, [77] * 3, [255] * 3])
    bi = _pixels(open_rgb(tmp_path / "b.png"))[0]
    assert {int(v) for v in bi.ravel()} <= {0, 255}
    np.testing.assert_array_equal(bi[2], [255, 255, 255])


def test_sixteen_bit_grayscale_keeps_the_high_byte(tmp_path: Path) -> None:
    values = np.array([[0, 255, 256, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")  # Pillow decodes 16-bit PNG gray as I;16 (or I)
    px = _pixels(open_rgb(tmp_path / "g16.png"))
    np.testing.assert_array_equal(px[0, :, 0], [0, 0, 1, 128, 255])
    np.testing.assert_array_equal(px[0, :, 0], px[0, :, 2])


def test_thirty_two_bit_out_of_range_is_rejected(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 70000]], dtype=np.int32), "I").save(tmp_path / "big.tif")
    with pytest.raises(ImageLoadError, match=r"big\.tif.*outside 0\.\.65535"):
        open_rgb(tmp_path / "big.tif")


def test_float_image_is_rejected(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0.5, 1.5]], dtype=np.float32), "F").save(tmp_path / "f.tif")
    with pytest.raises(ImageLoadError, match=r"f\.tif.*unsupported pixel format \(mode F\)"):
        open_rgb(tmp_path / "f.tif")


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    px = _pixels(open_rgb(tmp_path / "c.jpg"))
    assert px[4, 4, 0] > 200 and px[4, 4, 1] < 60 and px[4, 4, 2] < 60  # cyan=0, magenta=yellow=full → red


def test_truncated_jpeg_is_rejected_with_its_name(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    Image.fromarray(arr, "RGB").save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError) as info:
        open_rgb(tmp_path / "cut.jpg")
    assert "cut.jpg" in str(info.value)
    assert info.value.path == tmp_path / "cut.jpg"


@pytest.mark.parametrize("content", [b"", b"this is not an image\n", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10])
def test_non_images_are_rejected_with_their_name(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "fake.png").write_bytes(content)
    with pytest.raises(ImageLoadError, match=r"fake\.png: unreadable image"):
        open_rgb(tmp_path / "fake.png")


def test_missing_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.jpg"):
        open_rgb(tmp_path / "nope.jpg")


def test_image_name_suffixes() -> None:
    assert is_image_name("00.JPG") and is_image_name("a.jpeg") and is_image_name("x.png")
    assert not is_image_name("notes.txt") and not is_image_name("archive.zip")
