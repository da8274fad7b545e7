"""The method registry: lazy, shared, once-only backends; optional DiffuSeq; stable order."""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.config import GenerationConfig
from generation.registry import MethodRegistry, build_registry
from generation.types import GenerationError, UnknownMethod
from generation.versions import folder_version
from settings import Settings


class EchoBackend:
    model_id = "echo"

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        return [f"{p} {s}." for p, s in zip(prompts, seeds, strict=True)]

    def warmup(self) -> None:
        pass


def test_build_registry_from_settings_lists_methods_in_order(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        gpt_model=str(tmp_path / "gpt"),
        diffuseq_model=str(tmp_path / "none"),
        classic_index=str(tmp_path / "none"),
    )
    registry = build_registry(settings.generation())
    infos = registry.methods()
    assert [i.name for i in infos] == ["gpt", "gpt-sample"]  # no DiffuSeq folder: not offered
    assert [i.display_name for i in infos] == ["GPT", "GPT (sampling)"]
    assert infos[0].params["num_beams"] == 6 and infos[0].params["do_sample"] is False
    assert registry.method("gpt").deterministic and not registry.method("gpt-sample").deterministic
    assert not registry.is_loaded("gpt")  # nothing is loaded while building


def test_plain_config_and_overrides() -> None:
    registry = build_registry(GenerationConfig.defaults(gpt_num_beams=4), enable_diffuseq=False)
    assert registry.method("gpt").params["num_beams"] == 4
    registry = build_registry(None, gpt_max_new_tokens=0, enable_diffuseq=False)
    assert registry.method("gpt").params["max_length"] == 20


def test_gpt_methods_share_one_backend(tiny_gpt_dir: Path) -> None:
    config = GenerationConfig.defaults(gpt_model=str(tiny_gpt_dir), enable_diffuseq=False)
    registry = build_registry(config)
    assert registry.backend("gpt") is registry.backend("gpt-sample")
    assert registry.backend("gpt").model_id == folder_version("gpt", tiny_gpt_dir)


def test_backends_load_lazily_and_once_across_threads() -> None:
    loads = []

    def loader() -> EchoBackend:
        loads.append(threading.current_thread().name)
        return EchoBackend()

    registry = MethodRegistry()
    registry.add_backend("echo", loader)
    registry.add_method("a", "A", "echo", {"do_sample": True})
    registry.add_method("b", "B", "echo", {"do_sample": False})
    assert loads == []
    threads = [threading.Thread(target=registry.backend, args=(name,)) for name in "abab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(loads) == 1
    assert registry.load_all() == {"echo": registry.backend("a")}


def test_unknown_method() -> None:
    registry = MethodRegistry()
    with pytest.raises(UnknownMethod):
        registry.method("nope")
    with pytest.raises(ValueError, match="unknown backend"):
        registry.add_method("x", "X", "missing", {})


def test_required_backend_failure_raises() -> None:
    def broken() -> EchoBackend:
        raise OSError("no weights")

    registry = MethodRegistry()
    registry.add_backend("gpt", broken)
    registry.add_method("gpt", "GPT", "gpt", {})
    with pytest.raises(GenerationError, match="no weights"):
        registry.load_all()
    assert registry.names() == ["gpt"]  # still listed: the bot should not start without it


def test_broken_diffuseq_is_dropped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "diffuseq"
    folder.mkdir()  # exists, but holds no model
    registry = build_registry(
        GenerationConfig.defaults(gpt_model=str(tmp_path / "gpt"), diffuseq_model=str(folder)),
        enable_classic=False,
    )
    assert registry.names() == ["gpt", "gpt-sample", "diffuseq"]
    registry.add_backend("echo", EchoBackend())
    registry.add_method("echo", "Echo", "echo", {})
    with caplog.at_level(logging.WARNING, logger="generation.registry"):
        loaded = registry.load_all(["diffuseq", "echo"])
    assert list(loaded) == ["echo"]
    assert registry.names() == ["gpt", "gpt-sample", "echo"]
    assert "diffuseq" in caplog.text
    with pytest.raises(UnknownMethod):
        registry.method("diffuseq")


def test_diffuseq_disabled_by_setting(tmp_path: Path) -> None:
    (tmp_path / "diffuseq").mkdir()
    folder = str(tmp_path / "diffuseq")
    config = GenerationConfig.defaults(diffuseq_model=folder, enable_diffuseq=False)
    assert "diffuseq" not in build_registry(config).names()
