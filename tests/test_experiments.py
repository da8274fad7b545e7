"""Experiments without the bot: the setting, the users' arms, the registry's second version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.arms import Arms, arm_of
from generation.config import GenerationConfig
from generation.experiments import parse_experiment
from generation.registry import build_registry
from generation.types import (
    GenerationBusy,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    UnknownMethod,
)
from settings import Settings, explain

ROOT = Path(__file__).resolve().parents[1]


def folders(tmp_path: Path, *names: str) -> list[Path]:
    made = [tmp_path / name for name in names]
    for folder in made:
        folder.mkdir()
    return made


# --- the setting ------------------------------------------------------------------------------


def test_the_setting_names_a_method_and_two_folders() -> None:
    experiment = parse_experiment(" gpt : models/gpt , models/gpt-tuned ")
    assert experiment is not None
    assert experiment.method == "gpt"
    assert experiment.folders == ("models/gpt", "models/gpt-tuned")
    assert experiment.name == "gpt:models/gpt,models/gpt-tuned"
    assert parse_experiment("") is None and parse_experiment(None) is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("models/gpt,models/gpt-tuned", "method:folderA,folderB"),
        ("gpt:models/gpt", "method:folderA,folderB"),
        ("gpt:a,b,c", "method:folderA,folderB"),
        ("gpt:a,", "method:folderA,folderB"),
        ("gtp:a,b", "no method 'gtp'"),
        ("gpt:a,a", "the same"),
    ],
)
def test_a_malformed_setting_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_experiment(text)


def test_a_missing_folder_fails_the_settings_naming_experiment(tmp_path: Path) -> None:
    a, b = folders(tmp_path, "a", "b")
    with pytest.raises(ValidationError) as caught:
        Settings(_env_file=None, experiment=f"gpt:{a},{tmp_path / 'nope'}")
    line = explain(caught.value)
    assert line.startswith("EXPERIMENT: ") and "model folder not found" in line
    assert str(tmp_path / "nope") in line
    settings = Settings(_env_file=None, experiment=f" gpt: {a} ,{b}")
    assert settings.experiment == f"gpt:{a},{b}" == settings.generation().experiment
    assert Settings(_env_file=None).experiment is None


def test_a_missing_folder_stops_the_start_with_one_clear_line(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bot"],
        cwd=tmp_path,  # no .env here; the folders are relative to it
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": "1:x",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'jokes.db'}",
            "TELEGRAM_API_URL": "http://127.0.0.1:9",  # never reached: the start fails first
            "EXPERIMENT": f"gpt:{ROOT / 'models' / 'gpt'},models/gpt-tuned",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("Cannot start: EXPERIMENT: ")
    assert "model folder not found: models/gpt-tuned" in lines[0]
    assert not (tmp_path / "jokes.db").exists()  # nothing was touched before the check


# --- arms -------------------------------------------------------------------------------------


def test_a_user_keeps_the_arm_in_another_process() -> None:
    """Python's hash() of a string changes per process; the arm must not."""
    ids = [1, 42, 501, 777_000_111, 5_000_000_000]
    script = (
        "import json, sys; from bot.arms import arm_of; "
        "print(json.dumps([arm_of('gpt:a,b', int(i)) for i in sys.argv[1:]]))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    run = subprocess.run(
        [sys.executable, "-c", script, *map(str, ids)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    assert json.loads(run.stdout) == [arm_of("gpt:a,b", i) for i in ids]
    assert [arm_of("gpt:a,b", i) for i in ids] == [arm_of("gpt:a,b", i) for i in ids]


def test_arms_are_roughly_balanced_and_dealt_anew_per_experiment() -> None:
    first = [arm_of("gpt:models/gpt,models/gpt-tuned", user) for user in range(1000)]
    assert set(first) == {"A", "B"}
    assert 430 <= first.count("B") <= 570  # binomial(1000, 0.5): outside is a 1e-5 event
    second = [arm_of("gpt:models/gpt,models/gpt-v3", user) for user in range(1000)]
    moved = sum(a != b for a, b in zip(first, second, strict=True))
    assert 400 <= moved <= 600  # a new experiment is a new, independent split


# --- the registry -----------------------------------------------------------------------------


def test_the_second_folder_is_an_unlisted_version_of_the_method(tmp_path: Path) -> None:
    a, b = folders(tmp_path, "gpt", "gpt-tuned")
    config = GenerationConfig.defaults(gpt_model=str(a), enable_diffuseq=False)
    registry = build_registry(config, experiment=f"gpt:{a},{b}")
    assert registry.names() == build_registry(config).names()  # the picker does not change
    assert "gpt[B]" not in registry and "gpt[B]" not in registry.names()
    running = registry.experiment
    assert running is not None and running.methods == {"A": "gpt", "B": "gpt[B]"}
    base, version = registry.method("gpt"), registry.method("gpt[B]")
    assert version.version_of == "gpt" and version.backend_key != base.backend_key
    assert (version.params, version.candidates, version.redraw_params) == (
        base.params,
        base.candidates,
        base.redraw_params,
    )
    now, later = registry.startup_order("gpt")
    assert "gpt[B]" in now and "gpt[B]" not in later  # loaded before the bot answers
    assert running.arm_of_method("gpt") == "A" and running.arm_of_method("gpt[B]") == "B"


def test_two_folders_other_than_the_default_are_two_versions(tmp_path: Path) -> None:
    a, b = folders(tmp_path, "old", "new")
    registry = build_registry(None, enable_diffuseq=False, experiment=f"gpt:{a},{b}")
    running = registry.experiment
    assert running is not None and running.methods == {"A": "gpt[A]", "B": "gpt[B]"}
    assert running.arm_of_method("gpt") is None  # the default version serves no arm
    assert build_registry(None, enable_diffuseq=False).experiment is None


def test_a_version_that_cannot_load_names_the_experiment(tmp_path: Path) -> None:
    a, b = folders(tmp_path, "gpt", "empty")
    config = GenerationConfig.defaults(gpt_model=str(a), enable_diffuseq=False)
    registry = build_registry(config, experiment=f"gpt:{a},{b}")
    with pytest.raises(GenerationError, match=r"EXPERIMENT=gpt:.*empty"):
        registry.load_all(["gpt[B]"])


def test_an_experiment_on_a_method_not_offered_fails_the_start(tmp_path: Path) -> None:
    a, b = folders(tmp_path, "d1", "d2")
    with pytest.raises(GenerationError, match=r"EXPERIMENT=diffuseq:.*not offered"):
        build_registry(None, enable_diffuseq=False, experiment=f"diffuseq:{a},{b}")


# --- the bot's side: which version serves a request ---------------------------------------------


class StubService:
    """Answers like GenerationService: jokes per method, or the error set for a method."""

    running = True

    def __init__(self, errors: dict[str, GenerationError]) -> None:
        self.errors = errors
        self.asked: list[str] = []

    async def generate(self, request: GenerationRequest) -> list[Joke]:
        self.asked.append(request.method)
        if request.method in self.errors:
            raise self.errors[request.method]
        return [Joke("Кот пришёл.", request.method, f"v-{request.method}", {}, 1.0)]


def raised(error: GenerationError, cause: Exception | None) -> GenerationError:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("error", "falls_back"),
    [
        (raised(GenerationError("generation failed"), RuntimeError("oom")), True),
        (UnknownMethod("gpt[B] is gone"), True),
        (GenerationError("the model produced no usable joke"), False),
        (GenerationTimeout("no joke within 30 s"), False),
        (GenerationBusy("busy"), False),
    ],
)
async def test_only_a_failing_version_falls_back(
    tmp_path: Path, error: GenerationError, falls_back: bool
) -> None:
    a, b = folders(tmp_path, "gpt", "gpt-tuned")
    config = GenerationConfig.defaults(gpt_model=str(a), enable_diffuseq=False)
    registry = build_registry(config, experiment=f"gpt:{a},{b}")
    assert registry.experiment is not None
    user = next(u for u in range(100) if arm_of(registry.experiment.experiment.name, u) == "B")
    service = StubService({"gpt[B]": error})
    arms = Arms(service, registry)  # type: ignore[arg-type]
    request = GenerationRequest(prompt="Кот", method="gpt")
    if not falls_back:
        with pytest.raises(type(error)):
            await arms.generate(request, user)
        assert service.asked == ["gpt[B]"]
        return
    (joke,) = await arms.generate(request, user)
    assert service.asked == ["gpt[B]", "gpt"]
    assert (joke.method, joke.model, getattr(joke, "arm", None)) == ("gpt", "v-gpt", "A")


async def test_methods_outside_the_experiment_are_untouched(tmp_path: Path) -> None:
    a, b = folders(tmp_path, "gpt", "gpt-tuned")
    config = GenerationConfig.defaults(gpt_model=str(a), enable_diffuseq=False)
    service = StubService({})
    arms = Arms(service, build_registry(config, experiment=f"gpt:{a},{b}"))  # type: ignore[arg-type]
    for user in range(20):
        (joke,) = await arms.generate(GenerationRequest("Кот", "gpt-sample"), user)
        assert getattr(joke, "arm", None) is None
    arms = Arms(service, build_registry(config))  # type: ignore[arg-type]
    (joke,) = await arms.generate(GenerationRequest("Кот", "gpt"), 1)
    assert getattr(joke, "arm", None) is None and service.asked[-1] == "gpt"
    assert set(service.asked) == {"gpt-sample", "gpt"}
