"""``load_suite``: the pinned API, data-root resolution, verification on load, imports, generator hook."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.data.errors import ManifestError, NotImportedError, VerificationError
from benchmark.data.imported import RECORD_NAME, import_images
from benchmark.data.manifest import load_manifest
from benchmark.data.synthetic import _write_png, write_synthetic_suite
from benchmark.suites import Suite, default_data_root, load_suite, suite_from_manifest

DATA = os.environ.get("OVERFIT_BENCH_DATA")
needs_data = pytest.mark.skipif(
    not DATA,
    reason="OVERFIT_BENCH_DATA is not set (CI sets it to ../shared/datasets); DreamBench copy not available",
)


@needs_data
def test_load_dreambench() -> None:
    suite = load_suite("dreambench")
    assert suite.name == "dreambench" and suite.version == 1
    assert len(suite.concepts) == 30
    assert sum(c.kind == "live" for c in suite.concepts) == 9
    assert sum(c.kind == "object" for c in suite.concepts) == 21
    assert all(len(c.prompts) == 25 for c in suite.concepts)
    assert suite.images_per_prompt == 4 and suite.seeds == [0, 1, 2, 3]
    assert len(suite.lfd_prompts) == 20 and suite.class_prompts[0] == "a {class}"
    images = [p for c in suite.concepts for p in c.images]
    assert len(images) == 158 and all(p.is_file() for p in images)
    dog = suite.concept("dog")
    assert dog.images[0] == Path(str(DATA)) / "dreambench/dataset/dog/00.jpg"
    assert dog.prompts[10] == "a {concept} wearing a red hat"
    assert suite.class_prompts[1].replace("{class}", dog.class_noun) == "a photo of a dog"
    assert suite.concept("teapot").prompts[10] == "a {concept} with a wheat field in the background"


@needs_data
def test_load_smoke_reads_the_dreambench_files() -> None:
    suite = load_suite("smoke")
    assert [(c.id, c.kind) for c in suite.concepts] == [("dog", "live"), ("backpack", "object")]
    assert [len(c.prompts) for c in suite.concepts] == [2, 2]
    assert suite.seeds == [0] and suite.images_per_prompt == 1
    assert suite.root == Path(str(DATA)) / "dreambench"
    assert [len(c.images) for c in suite.concepts] == [5, 6]


@needs_data
def test_concept_load_images_gives_rgb() -> None:
    imgs = load_suite("smoke").concept("dog").load_images()
    assert len(imgs) == 5 and all(im.mode == "RGB" and min(im.size) >= 512 for im in imgs)


def test_data_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OVERFIT_BENCH_DATA", str(tmp_path / "env"))
    assert default_data_root() == tmp_path / "env"
    monkeypatch.delenv("OVERFIT_BENCH_DATA")
    monkeypatch.setenv("OVERFIT_BENCH_CACHE", str(tmp_path / "cache"))
    assert default_data_root() == tmp_path / "cache" / "data"
    monkeypatch.delenv("OVERFIT_BENCH_CACHE")
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda app: str(tmp_path / "user" / app))
    assert default_data_root() == tmp_path / "user" / "overfit-bench" / "data"


def test_argument_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    manifest = write_synthetic_suite(tmp_path / "real")
    monkeypatch.setenv("OVERFIT_BENCH_DATA", str(tmp_path / "empty"))
    with pytest.raises(VerificationError):
        load_suite(manifest)  # the env root has no files
    suite = load_suite(manifest, tmp_path / "real")
    assert suite.root == tmp_path / "real" / "synthetic"
    assert len(suite.concepts[0].images) == 3
    monkeypatch.setenv("OVERFIT_BENCH_DATA", str(tmp_path / "real"))
    assert load_suite(manifest).root == tmp_path / "real" / "synthetic"


def test_load_refuses_files_that_do_not_match(tmp_path: Path) -> None:
    manifest = write_synthetic_suite(tmp_path)
    bad = tmp_path / "synthetic/images/teapot1/01.png"
    bad.write_bytes(bad.read_bytes()[::-1])
    with pytest.raises(VerificationError) as info:
        load_suite(manifest, tmp_path)
    assert [p.path for p in info.value.problems] == [bad]
    assert "data fetch synthetic" in str(info.value)
    # Without eager verification the manifest is usable, and each concept verifies on first access.
    suite = load_suite(manifest, tmp_path, verify=False)
    assert len(suite.concept("dog0").images) == 3
    with pytest.raises(VerificationError, match="concept 'teapot1'"):
        _ = suite.concept("teapot1").images


def test_unknown_suite_and_concept(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="did you mean 'dreambench'"):
        load_suite("dreambnch")
    suite = load_suite(write_synthetic_suite(tmp_path), tmp_path)
    with pytest.raises(KeyError, match="did you mean 'dog0'"):
        suite.concept("dog")


def test_customconcept101_without_import_says_how_to_import(tmp_path: Path) -> None:
    with pytest.raises(NotImportedError, match=r"overfit-bench data import customconcept101 --from DIR"):
        load_suite("customconcept101", tmp_path)
    suite = load_suite("customconcept101", tmp_path, verify=False)
    assert len(suite.concepts) == 101 and all(len(c.prompts) == 20 for c in suite.concepts)
    with pytest.raises(NotImportedError, match="data import customconcept101"):
        _ = suite.concepts[0].images


# --------------------------------------------------------------------------------------------------
# Import-based suites


def _imported(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(manifest, upstream folder holding images/<concept>/, data root)."""
    upstream = tmp_path / "download"
    manifest = write_synthetic_suite(tmp_path / "meta", imported=True, images_root=upstream)
    return manifest, upstream, tmp_path / "data"


def test_import_records_checksums_then_load_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest, upstream, data = _imported(tmp_path)
    (upstream / "images/dog0/notes.txt").write_text("not an image", encoding="utf-8")
    (upstream / "images/dog0/.DS_Store").write_bytes(b"\0")
    with pytest.raises(NotImportedError):
        load_suite(manifest, data)
    root = data / "synthetic"
    assert (
        main(
            [
                "data",
                "import",
                "synthetic",
                "--manifest",
                str(manifest),
                "--from",
                str(upstream),
                "--root",
                str(root),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 concepts / 6 images verified and recorded in" in out and "2 non-image files ignored" in out
    record = json.loads((root / RECORD_NAME).read_text(encoding="utf-8"))
    assert record["suite"] == "synthetic" and len(record["concepts"]["dog0"]) == 3
    assert not (root / "images/dog0/notes.txt").exists()
    suite = load_suite(manifest, data)
    assert [len(c.images) for c in suite.concepts] == [3, 3]
    assert (
        main(["data", "verify", "synthetic", "--manifest", str(manifest), "--root", str(root)]) == 1
    )  # LICENSE
    (root / "LICENSE.txt").write_bytes((tmp_path / "meta/synthetic/LICENSE.txt").read_bytes())
    assert main(["data", "verify", "synthetic", "--manifest", str(manifest), "--root", str(root)]) == 0
    # Tampering after the import is caught on load.
    (root / "images/teapot1/00.png").write_bytes(b"x")
    with pytest.raises(VerificationError, match="re-import"):
        load_suite(manifest, data)


def test_reimport_must_match_the_first_record_unless_forced(tmp_path: Path) -> None:
    manifest, upstream, data = _imported(tmp_path)
    m, root = load_manifest(manifest), data / "synthetic"
    first = import_images(m, upstream, root)
    assert first.recorded_now and len(first.written) == 6
    again = import_images(m, upstream, root)
    assert not again.recorded_now and again.written == [] and len(again.kept) == 6
    _write_png(upstream / "images/dog0/01.png", seed=999, size=16)
    with pytest.raises(VerificationError, match="--force") as info:
        import_images(m, upstream, root)
    assert [p.path.name for p in info.value.problems] == ["01.png"]
    forced = import_images(m, upstream, root, force=True)
    assert forced.recorded_now and forced.written == ["images/dog0/01.png"]
    assert len(load_suite(manifest, data).concept("dog0").images) == 3


def test_import_refuses_bad_folders_and_writes_nothing(tmp_path: Path) -> None:
    manifest, upstream, data = _imported(tmp_path)
    m, root = load_manifest(manifest), data / "synthetic"
    broken = upstream / "images/dog0/02.png"
    broken.write_bytes(broken.read_bytes()[:40])
    for f in (upstream / "images/teapot1").iterdir():
        f.unlink()
    with pytest.raises(VerificationError, match="nothing was written") as info:
        import_images(m, upstream, root)
    details = {p.path: p.detail for p in info.value.problems}
    assert details[broken].startswith("unreadable image")
    assert "no image files for 'teapot1'" in details[upstream / "images/teapot1"]
    assert not root.exists()
    (upstream / "images/teapot1").rmdir()
    with pytest.raises(VerificationError) as info:
        import_images(m, upstream, root)
    assert any("missing concept folder for 'teapot1'" in p.detail for p in info.value.problems)


def test_import_accepts_the_image_folder_itself(tmp_path: Path) -> None:
    manifest, upstream, data = _imported(tmp_path)
    report = import_images(load_manifest(manifest), upstream / "images", data / "synthetic")
    assert report.images == 6
    assert (data / "synthetic/images/teapot1/02.png").is_file()


def test_import_of_a_pinned_suite_is_refused(tmp_path: Path) -> None:
    manifest = write_synthetic_suite(tmp_path)
    with pytest.raises(ValueError, match="use `overfit-bench data fetch`"):
        import_images(load_manifest(manifest), tmp_path, tmp_path / "x")


def test_customconcept101_import_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Stand-in images for all 101 concepts, laid out like upstream's benchmark_dataset.zip."""
    m = load_manifest("customconcept101")
    download = tmp_path / "download"
    for i, c in enumerate(m.concepts):
        for j in range(3):
            _write_png(download / (c.image_dir or "") / f"{j:02d}.png", seed=10 * i + j, size=8)
    root = tmp_path / "data" / "customconcept101"
    assert (
        main(
            [
                "data",
                "import",
                "customconcept101",
                "--from",
                str(download),
                "--root",
                str(root),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "101 concepts / 303 images verified and recorded" in capsys.readouterr().out
    suite = load_suite("customconcept101", tmp_path / "data")
    assert len(suite.concepts) == 101 and all(len(c.images) == 3 for c in suite.concepts)
    assert suite.concept("pet_cat1").kind == "live" and suite.concept("scene_barn").kind == "object"
    if DATA:  # the metadata files can be fetched from the local upstream copy; then everything verifies
        src = Path(DATA) / "customconcept101"
        assert (
            main(
                [
                    "data",
                    "fetch",
                    "customconcept101",
                    "--root",
                    str(root),
                    "--from",
                    str(src),
                    "--no-progress",
                ]
            )
            == 0
        )
        assert main(["data", "verify", "customconcept101", "--root", str(root), "--no-decode"]) == 0
        assert "101 concepts / 303 images (+52 metadata files)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# Generated suites (the toy suite's hook)


def test_generated_suite_hook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = write_synthetic_suite(tmp_path / "real")
    (tmp_path / "mods").mkdir()
    (tmp_path / "mods/toygen.py").write_text(
        textwrap.dedent(
            f"""
            from benchmark.data.manifest import load_manifest
            from benchmark.suites import suite_from_manifest

            def make(manifest, root):
                return suite_from_manifest(load_manifest({str(real)!r}), root=root.parent / "synthetic")

            def wrong(manifest, root):
                return 42
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    gen = {
        "schema": 1,
        "name": "gen",
        "version": 1,
        "source": {"type": "generated", "generator": "toygen:make"},
        "license": {"name": "n/a"},
    }
    (tmp_path / "gen.json").write_text(json.dumps(gen), encoding="utf-8")
    suite = load_suite(tmp_path / "gen.json", tmp_path / "real")
    assert isinstance(suite, Suite) and [c.id for c in suite.concepts] == ["dog0", "teapot1"]
    gen["source"]["generator"] = "toygen:wrong"
    (tmp_path / "gen.json").write_text(json.dumps(gen), encoding="utf-8")
    with pytest.raises(ManifestError, match="returned int, expected a Suite"):
        load_suite(tmp_path / "gen.json", tmp_path / "real")
    gen["source"]["generator"] = "toygen:absent"
    (tmp_path / "gen.json").write_text(json.dumps(gen), encoding="utf-8")
    with pytest.raises(ManifestError, match="cannot be imported"):
        load_suite(tmp_path / "gen.json", tmp_path / "real")


def test_suite_from_manifest_with_explicit_root(tmp_path: Path) -> None:
    manifest = write_synthetic_suite(tmp_path / "somewhere")
    suite = suite_from_manifest(load_manifest(manifest), root=tmp_path / "somewhere" / "synthetic")
    assert suite.manifest.sha256 == load_manifest(manifest).sha256
    assert suite.concept("teapot1").images[0].name == "00.png"
