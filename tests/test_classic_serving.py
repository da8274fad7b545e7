"""The `classic` method in the registry, the service and the command line."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from generation.cli import main
from generation.config import GenerationConfig
from generation.registry import build_registry
from generation.types import GenerationRequest, NothingFound, UnknownMethod
from settings import Settings, get_settings
from tests.classic_kit import ABOUT_KOT, STARTS_WITH_KOT, build_tiny_index


@pytest.fixture(scope="module")
def tiny_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("classic")
    build_tiny_index(folder)
    return folder


def config(tmp_path: Path, **changes: Any) -> GenerationConfig:
    return GenerationConfig.defaults(
        gpt_model=str(tmp_path / "no-gpt"), enable_diffuseq=False, best_of_n=False
    ).but(**changes)


def test_on_by_default_listed_last_and_off_by_setting(tiny_index: Path, tmp_path: Path) -> None:
    assert Settings.model_construct().enable_classic is True
    registry = build_registry(config(tmp_path, classic_index=str(tiny_index)))
    assert registry.names() == ["gpt", "gpt-sample", "classic"]
    method = registry.method("classic")
    assert method.lookup and method.display_name == "📚 Из сборника"
    assert registry.is_optional("classic")  # the bot starts without it
    assert registry.startup_order("gpt") == (["gpt", "gpt-sample"], ["classic"])
    off = build_registry(config(tmp_path, classic_index=str(tiny_index), enable_classic=False))
    assert "classic" not in off.names()


def test_env_setting_reaches_the_registry(
    tiny_index: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENABLE_CLASSIC", "false")
    monkeypatch.setenv("CLASSIC_INDEX", str(tiny_index))
    settings = Settings(_env_file=None)
    assert not settings.enable_classic and settings.generation().classic_index == str(tiny_index)
    assert "classic" not in build_registry(settings.generation()).names()


def test_missing_index_is_one_warning_and_no_method(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        registry = build_registry(config(tmp_path, classic_index=str(tmp_path / "nope")))
    assert registry.names() == ["gpt", "gpt-sample"]
    lines = [r.getMessage() for r in caplog.records if "classic" in r.getMessage()]
    assert len(lines) == 1 and "not found" in lines[0] and "classic_index" in lines[0]


def test_broken_index_is_dropped_when_loaded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "jokes.jsonl.xz").write_bytes(b"garbage")
    registry = build_registry(config(tmp_path, classic_index=str(broken)))
    assert "classic" in registry.names()
    with caplog.at_level(logging.WARNING, logger="generation.registry"):
        assert registry.load_all(["classic"]) == {}
    assert "classic" not in registry.names()
    assert "CLASSIC_INDEX" in caplog.text  # names the setting to fix
    with pytest.raises(UnknownMethod):
        registry.method("classic")


async def test_service_looks_up_without_the_models(
    make_service: Any, tiny_index: Path, tmp_path: Path
) -> None:
    registry = build_registry(config(tmp_path, classic_index=str(tiny_index)))
    service = await make_service(registry, preload=["classic"])
    assert not registry.is_loaded("gpt")  # the GPT (missing here) is never needed
    (joke,) = await service.generate(GenerationRequest("  Кота ", "classic"))
    assert joke.params["source_id"] in STARTS_WITH_KOT and joke.params["match"] == "start"
    seen = (joke.params["source_id"],)
    (other,) = await service.generate(GenerationRequest("Кота", "classic", exclude=seen))
    assert other.params["source_id"] in STARTS_WITH_KOT - set(seen)
    four = await service.generate(GenerationRequest("Кот", "classic", count=4))
    assert {j.params["source_id"] for j in four} == STARTS_WITH_KOT | ABOUT_KOT
    with pytest.raises(NothingFound):
        await service.generate(GenerationRequest("Квазар", "classic"))
    assert service.pending == 0


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_index: Path) -> Iterator[None]:
    monkeypatch.setenv("ENABLE_DIFFUSEQ", "false")
    monkeypatch.setenv("GPT_MODEL", str(tmp_path / "no-such-model"))
    monkeypatch.setenv("CLASSIC_INDEX", str(tiny_index))
    monkeypatch.setenv("BEST_OF_N", "false")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_classic(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    assert "classic\t📚 Из сборника" in capsys.readouterr().out
    assert main(["Кота", "--method", "classic", "-n", "2", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["params"]["source_id"] for row in rows} == STARTS_WITH_KOT
    assert all(row["method"] == "classic" and row["model"].startswith("classic@") for row in rows)
    assert main(["Квазар", "--method", "classic"]) == 1
    assert "no joke in the collection" in capsys.readouterr().err
