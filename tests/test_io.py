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


# ------------------------------------------------------------------ one loader for every reader


def _rotated_jpeg(path: Path, mode: str = "RGB") -> Path:
    """A JPEG stored 32x16 (landscape, left half red/white, right half blue/black) with EXIF orientation 6
    ("rotate 90° clockwise to display"): shown upright it is 16x32 with red/white on top."""
    arr = np.zeros((16, 32, 3), dtype=np.uint8)
    arr[:, :16] = (255, 0, 0) if mode == "RGB" else (255, 255, 255)
    arr[:, 16:] = (0, 0, 255) if mode == "RGB" else (0, 0, 0)
    img = Image.fromarray(arr, "RGB").convert(mode)
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, quality=100, exif=exif)
    return path


def test_exif_rotated_jpeg_is_upright_for_training_features_and_identity(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    import benchmark.toy.oracle
    from baselines.data import load_images
    from benchmark.io import image_size
    from benchmark.toy.validity import read_images
    from metrics.backbones import Backbone, extract_image_features

    path = _rotated_jpeg(tmp_path / "rot.jpg")
    upright = open_rgb(path)
    assert upright.size == image_size(path) == (16, 32)

    # training: [1, 3, 16, 16] squashed, red rows on top and blue rows at the bottom (not left/right)
    train = load_images([path], 16, "squash", "bilinear")
    assert train[0, 0, 1].min() > 0.6 and train[0, 2, 1].max() < -0.6  # top row: red
    assert train[0, 2, 14].min() > 0.6 and train[0, 0, 14].max() < -0.6  # bottom row: blue
    assert torch.equal(train, load_images([upright], 16, "squash", "bilinear"))

    # features: the backbone's preprocessing receives the same upright pixels
    seen: list[tuple[int, int]] = []

    def preprocess(img: Image.Image) -> torch.Tensor:
        seen.append(img.size)
        return torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1)

    probe = Backbone("dino", "probe", "none", torch.nn.Flatten(), preprocess, "pixels")
    feats = extract_image_features(probe, [path], normalize=False)
    assert seen == [(16, 32)]
    expected = torch.from_numpy(np.asarray(upright, dtype=np.float32)).permute(2, 0, 1).reshape(1, -1)
    assert torch.equal(feats, expected)

    # identity (the toy oracle's file reader): the images it is given are the upright ones
    given: list[Image.Image] = []
    monkeypatch.setattr(benchmark.toy.oracle, "predict", lambda oracle, images: given.extend(images) or [])
    read_images(None, [path])
    assert [im.size for im in given] == [(16, 32)]
    np.testing.assert_array_equal(np.asarray(given[0]), np.asarray(upright))


def test_exif_rotated_mask_is_upright_for_training(tmp_path: Path) -> None:
    from baselines.data import load_masks
    from benchmark.io import open_gray

    path = _rotated_jpeg(tmp_path / "mask.jpg", mode="L")
    gray = open_gray(path)
    assert gray.mode == "L" and gray.size == (16, 32)
    masks = load_masks([path], 16, 4, "squash", "bilinear")
    assert tuple(masks.shape) == (1, 1, 4, 4)
    assert float(masks[0, 0, 0].min()) > 0.9 and float(masks[0, 0, 3].max()) < 0.1  # white top, black bottom


def test_gray_keeps_grayscale_values_and_reduces_sixteen_bit(tmp_path: Path) -> None:
    from benchmark.io import open_gray

    Image.fromarray(np.array([[0, 1, 77, 254, 255]], dtype=np.uint8), "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(np.asarray(open_gray(tmp_path / "g.png")), [[0, 1, 77, 254, 255]])
    Image.fromarray(np.array([[0, 256, 65535]], dtype=np.uint16)).save(tmp_path / "g16.png")
    np.testing.assert_array_equal(np.asarray(open_gray(tmp_path / "g16.png")), [[0, 1, 255]])


def _png_rgb16(path: Path, samples: np.ndarray) -> None:
    """Write a 16-bit-per-channel RGB PNG (Pillow cannot write one): IHDR, one zlib IDAT, IEND."""
    import struct
    import zlib

    height, width, _ = samples.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + samples[y].astype(">u2").tobytes() for y in range(height))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_sixteen_bit_rgb_png_keeps_the_high_byte(tmp_path: Path) -> None:
    samples = np.array([[[0, 255, 256], [0x1234, 0x80FF, 65535]]], dtype=np.uint16)
    _png_rgb16(tmp_path / "rgb16.png", samples)
    np.testing.assert_array_equal(_pixels(open_rgb(tmp_path / "rgb16.png")), [[[0, 0, 1], [0x12, 0x80, 255]]])


def test_in_memory_images_follow_the_same_rules() -> None:
    rgba = Image.fromarray(np.array([[[0, 255, 0, 0], [0, 0, 255, 255]]], dtype=np.uint8), "RGBA")
    np.testing.assert_array_equal(_pixels(open_rgb(rgba))[0], [[255, 255, 255], [0, 0, 255]])
    rgb = Image.fromarray(np.arange(24, dtype=np.uint8).reshape(2, 4, 3), "RGB")
    out = open_rgb(rgb)
    assert out is not rgb and out.tobytes() == rgb.tobytes()
    with pytest.raises(TypeError, match="expected an image path or a PIL image, got int"):
        open_rgb(3)  # type: ignore[arg-type]


def test_image_size_of_a_non_image_names_the_file(tmp_path: Path) -> None:
    from benchmark.io import image_size

    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ImageLoadError, match=r"notes\.png: unreadable image"):
        image_size(tmp_path / "notes.png")


# ------------------------------------------------------------------ hashes, JSON, atomic writes


def test_sha256_file_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    import hashlib

    from benchmark.io import sha256_file

    data = np.random.default_rng(2).integers(0, 256, size=(1 << 20) + 123, dtype=np.uint8).tobytes()
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


def test_canonical_json_exact_bytes_and_refusals() -> None:
    from benchmark.io import canonical_json

    assert canonical_json({"b": 1, "a": [1.5, "é", None], "c": {"z": True, "y": 0}}) == (
        '{"a":[1.5,"é",null],"b":1,"c":{"y":0,"z":true}}'
    )
    with pytest.raises(ValueError, match="not JSON compliant"):
        canonical_json({"x": float("nan")})
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        canonical_json({"x": {1}})


def test_cache_keys_and_config_hashes_keep_their_bytes() -> None:
    """The cache's and the method config's hashes are taken over the same canonical bytes as before."""
    import hashlib

    from baselines.config import config_hash
    from benchmark.cache import hash_inputs

    sha = lambda text: hashlib.sha256(text.encode()).hexdigest()  # noqa: E731
    assert hash_inputs({"stage": "fit", "seed": 0, "prompt": "a café"}) == sha(
        '{"prompt":"a café","seed":0,"stage":"fit"}'
    )
    assert config_hash("lora", "2", {"rank": 8, "lr": 1e-4}) == sha(
        '{"config":{"lr":0.0001,"rank":8},"method":"lora","version":"2"}'
    )


def test_atomic_write_replaces_whole_files_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    import os

    from benchmark.io import atomic_write, atomic_write_json, atomic_write_text

    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"b": 1, "a": [2]})
    assert target.read_text(encoding="utf-8") == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("{ half", encoding="utf-8")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text(encoding="utf-8").startswith('{\n  "a"')  # the old file, untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]  # no temporary left

    with pytest.raises(TypeError):
        atomic_write_json(target, {"x": object()})
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.json"]
    atomic_write_text(tmp_path / "t.txt", "naïve\n")
    assert (tmp_path / "t.txt").read_bytes() == "naïve\n".encode()


# ------------------------------------------------------------------ module:attr references


def test_resolve_finds_objects_and_dotted_attributes() -> None:
    import collections
    import os.path

    from benchmark.io import resolve

    assert resolve("os.path:join") is os.path.join
    assert resolve("collections:OrderedDict.fromkeys") == collections.OrderedDict.fromkeys


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("os.path", "loader 'os.path' is not a reference of the form 'package.module:attribute'"),
        ("os:", "loader 'os:' is not a reference of the form 'package.module:attribute'"),
        ("a..b:c", "loader 'a..b:c' is not a reference of the form 'package.module:attribute'"),
        (3, "loader 3 is not a reference of the form 'package.module:attribute'"),
        ("no_such_pkg.mod:f", "loader 'no_such_pkg.mod:f' cannot be imported: No module named 'no_such_pkg'"),
        ("os:nope", "loader 'os:nope' cannot be imported: module 'os' has no attribute 'nope'"),
    ],
)
def test_resolve_errors_are_one_line_naming_what_and_the_reference(ref: object, message: str) -> None:
    from benchmark.io import resolve

    with pytest.raises(ValueError) as err:
        resolve(ref, "loader")  # type: ignore[arg-type]
    assert str(err.value) == message


def test_metric_and_backbone_references_use_the_same_resolver() -> None:
    import dataclasses

    from metrics.backbones import load_backbone
    from metrics.spec import get_metric

    spec = dataclasses.replace(get_metric("clip_t"), compute="metrics.similarity:absent")
    with pytest.raises(
        ValueError, match="metric 'clip_t' compute function 'metrics.similarity:absent' cannot be"
    ):
        spec.function()
    with pytest.raises(ValueError, match="backbone 'x' loader 'no_such_pkg:f' cannot be imported"):
        load_backbone("dino", "x", "none", loader="no_such_pkg:f")
