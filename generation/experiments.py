"""A/B experiments: one method served by two versions of its model side by side.

Why: a tuned model is only better if people like its jokes more, and that is only measurable
when both versions write for the same crowd at the same time. `EXPERIMENT=gpt:models/gpt,
models/gpt-tuned` keeps the method `gpt` (its picker entry, its decoding preset, its N) and
serves it from two folders: arm A from the first, arm B from the second. The bot splits users
between the arms (bot/arms.py) and stores the arm with every joke.

Here is the registry's side: an arm whose folder is the method's own model is the method itself;
any other folder gets a backend of its own and an unlisted method (`gpt[B]`) on it, loaded with
the method it is a version of. Folders are local: an experiment compares versions, and only a
local folder has one (generation/versions.py).

A version folder with a `judge/` subfolder (what `python -m generation.tune` writes: the judge
retrained on the votes, for that GPT) brings its judge along: best of N ranks that version's
candidates with it (`own_judges`, generation/selection.py). Serving a tuned model means serving
what was tuned with it; the shared judge would even refuse to read a tuned GPT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.config import GenerationConfig
from generation.registry import (
    DIFFUSEQ,
    GPT,
    GPT_SAMPLE,
    MethodRegistry,
    _diffuseq_loader,
    _gpt_loader,
)
from generation.types import GenerationError, UnknownMethod

ARMS = ("A", "B")
#: the subfolder of a version folder that holds its own judge (generation/tune writes it)
JUDGE_DIR = "judge"
#: methods whose model comes from a folder, so that a second folder is a second version
METHODS = (GPT, GPT_SAMPLE, DIFFUSEQ)
#: their backends: the config field that names the folder, and the loader
FOLDER_BACKENDS = {GPT: ("gpt_model", _gpt_loader), DIFFUSEQ: ("diffuseq_model", _diffuseq_loader)}


@dataclass(frozen=True, slots=True)
class Experiment:
    """`method:folderA,folderB`. `name`, the setting as written, keys the users' arms."""

    method: str
    folders: tuple[str, str]

    @property
    def name(self) -> str:
        return f"{self.method}:{','.join(self.folders)}"

    def missing_folders(self) -> list[str]:
        return [folder for folder in self.folders if not Path(folder).expanduser().is_dir()]


@dataclass(frozen=True, slots=True)
class ExperimentArms:
    """A running experiment: which registered method serves each arm."""

    experiment: Experiment
    methods: dict[str, str]  # arm -> method name (the method itself, or its unlisted version)

    @property
    def method(self) -> str:
        return self.experiment.method

    def arm_of_method(self, name: str) -> str | None:
        """The arm a method serves (the default method serves A when A is its own folder)."""
        return next((arm for arm, method in self.methods.items() if method == name), None)


def parse_experiment(text: str | None) -> Experiment | None:
    """`gpt:models/gpt,models/gpt-tuned` -> Experiment; empty -> None; else ValueError saying
    what is wrong (the settings show it as `EXPERIMENT: ...`)."""
    text = (text or "").strip()
    if not text:
        return None
    method, sep, rest = text.partition(":")
    folders = tuple(part.strip() for part in rest.split(","))
    method = method.strip()
    if not sep or not method or len(folders) != 2 or not all(folders):
        raise ValueError("expected method:folderA,folderB, e.g. gpt:models/gpt,models/gpt-tuned")
    if method not in METHODS:
        raise ValueError(f"no method {method!r} to experiment with; one of {', '.join(METHODS)}")
    if folders[0] == folders[1]:
        raise ValueError("the two folders are the same; name two versions to compare")
    return Experiment(method, (folders[0], folders[1]))


def check_experiment(text: str | None) -> str | None:
    """The setting in its canonical form, or ValueError (bad form, a folder that is missing)."""
    experiment = parse_experiment(text)
    if experiment is None:
        return None
    missing = experiment.missing_folders()
    if missing:
        raise ValueError(f"model folder not found: {missing[0]}")
    return experiment.name


def add_arms(
    registry: MethodRegistry, experiment: Experiment, config: GenerationConfig
) -> ExperimentArms:
    """Register the experiment's versions on `registry` (nothing is loaded here) and note them
    in `registry.experiment`. GenerationError if the method is not offered."""
    try:
        base = registry.method(experiment.method)
    except UnknownMethod:
        raise GenerationError(
            f"EXPERIMENT={experiment.name}: the method {experiment.method} is not offered"
        ) from None
    field, loader = FOLDER_BACKENDS[base.backend_key]
    own = Path(getattr(config, field)).expanduser().resolve()
    methods: dict[str, str] = {}
    for arm, folder in zip(ARMS, experiment.folders, strict=True):
        if Path(folder).expanduser().resolve() == own:
            methods[arm] = base.name
            continue
        key, name = f"{base.backend_key}[{arm}]", f"{base.name}[{arm}]"
        version = config.but(**{field: folder, **_own_tokenizer(field, folder)})
        registry.add_backend(
            key,
            loader(version, ("EXPERIMENT", experiment.name)),
            optional=registry.is_optional(base.name),
        )
        registry.add_method(
            name,
            base.display_name,
            key,
            base.params,
            deterministic=base.deterministic,
            candidates=base.candidates,
            redraw_params=base.redraw_params,
            version_of=base.name,
        )
        methods[arm] = name
    registry.experiment = ExperimentArms(experiment, methods)
    return registry.experiment


def own_judges(registry: MethodRegistry) -> dict[str, tuple[str, Callable[[], Any]]]:
    """{backend key: (judge folder, getter of that backend)} for the running experiment's
    versions whose folder has a `judge/` subfolder (a version served as the method itself keeps
    the method's judge, JUDGE_MODEL)."""
    running = registry.experiment
    if running is None:
        return {}
    found: dict[str, tuple[str, Callable[[], Any]]] = {}
    for arm, folder in zip(ARMS, running.experiment.folders, strict=True):
        name = running.methods[arm]
        judge = Path(folder).expanduser() / JUDGE_DIR
        if name == running.method or not judge.is_dir():
            continue
        key = registry.method(name).backend_key
        found[key] = (str(judge), lambda name=name: registry.backend(name))
    return found


def _own_tokenizer(field: str, folder: str) -> dict[str, None]:
    """A GPT folder with a tokenizer of its own uses it, not GPT_TOKENIZER (the method's)."""
    if field != "gpt_model":
        return {}
    from generation.gpt.loading import TOKENIZER_FILES  # torch: only where a GPT loads anyway

    own = any((Path(folder).expanduser() / name).exists() for name in TOKENIZER_FILES)
    return {"gpt_tokenizer": None} if own else {}


__all__ = [
    "ARMS",
    "JUDGE_DIR",
    "METHODS",
    "Experiment",
    "ExperimentArms",
    "add_arms",
    "check_experiment",
    "own_judges",
    "parse_experiment",
]
