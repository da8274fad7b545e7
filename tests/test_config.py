"""One configuration: Settings holds every default, the generation layer gets a typed view."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
from pydantic import ValidationError

from generation.config import GenerationConfig
from settings import Settings


def test_generation_config_is_a_view_of_settings() -> None:
    settings = Settings(_env_file=None, gpt_num_beams=3, diffuseq_sampler="ddim")
    config = settings.generation()
    assert config.gpt_num_beams == 3 and config.diffuseq_sampler == "ddim"
    for item in fields(GenerationConfig):
        assert getattr(config, item.name) == getattr(settings, item.name), item.name


def test_defaults_come_from_settings_and_ignore_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GPT_NUM_BEAMS", "7")
    assert Settings(_env_file=None).gpt_num_beams == 7
    defaults = GenerationConfig.defaults()
    assert defaults.gpt_num_beams == Settings.model_fields["gpt_num_beams"].default
    assert GenerationConfig.defaults(gpt_num_beams=2).gpt_num_beams == 2


def test_the_generation_layer_declares_no_defaults_of_its_own() -> None:
    with pytest.raises(TypeError):
        GenerationConfig()  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("name", "value"),
    [("gpt_quantize", "int9"), ("gpt_dtype", "float64"), ("diffuseq_sampler", "euler")],
)
def test_a_misspelt_choice_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name.upper(), value)
    with pytest.raises(ValidationError, match=name):
        Settings(_env_file=None)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"ADMIN_IDS": "abc"}, "ADMIN_IDS"),
        ({"GPT_QUANTIZE": "int9"}, "GPT_QUANTIZE"),
        ({"GPT_MODEL": "/nonexistent"}, "GPT_MODEL=/nonexistent"),
        ({"DEFAULT_METHOD": "nope"}, "DEFAULT_METHOD"),
        ({"TELEGRAM_API_URL": "notaurl"}, "TELEGRAM_API_URL"),
    ],
)
def test_a_wrong_setting_stops_the_bot_with_one_line(
    tmp_path: Path, env: dict[str, str], named: str
) -> None:
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env here
        env={
            **os.environ,
            "PYTHONPATH": str(root),
            "BOT_TOKEN": "1:x",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'jokes.db'}",
            "TELEGRAM_API_URL": "http://127.0.0.1:9",  # never reached: the start fails first
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Cannot start: ") and named in lines[0]
    assert "Traceback" not in run.stderr
