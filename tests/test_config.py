"""One configuration: Settings holds every default, the generation layer gets a typed view."""

from __future__ import annotations

from dataclasses import fields

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
    [("gpt_quantize", "int9"), ("gpt_decoder", "slow"), ("diffuseq_sampler", "euler")],
)
def test_a_misspelt_choice_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name.upper(), value)
    with pytest.raises(ValidationError, match=name):
        Settings(_env_file=None)
