"""``overfit-bench models``: explicit fetch only, offline verify, names with suggestions."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from benchmark.model_registry import find_model


def test_find_model_by_alias_and_typo() -> None:
    assert find_model("ViT-B-32").name == "clip-vit-b-32"
    assert find_model("stable-diffusion-v1-5/stable-diffusion-v1-5").name == "sd15"
    with pytest.raises(KeyError, match="did you mean"):
        find_model("sd-15x")


def test_verify_reports_missing_files_without_network(monkeypatch, capsys, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)
    assert main(["models", "verify", "dino-vit-s16"]) == 1
    out = capsys.readouterr().out
    assert "missing: timm/vit_small_patch16_224.dino/model.safetensors" in out
    assert "overfit-bench models fetch dino-vit-s16" in out


def test_fetch_offline_fails_cleanly(monkeypatch, capsys) -> None:
    import huggingface_hub

    def offline(*args, **kwargs):
        raise OSError("outgoing traffic has been disabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    assert main(["models", "fetch", "clip-vit-b-32"]) == 1
    assert "could not fetch timm/vit_base_patch32_clip_224.openai" in capsys.readouterr().err


def test_list_and_unknown(capsys) -> None:
    assert main(["models", "list"]) == 0
    assert "sd15" in capsys.readouterr().out
    assert main(["models", "verify", "nope"]) == 2
