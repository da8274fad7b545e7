"""Which version of a method writes for a user while an experiment runs (generation/experiments.py).

Each user stays in one arm for the whole experiment, whatever process or restart serves them:
the arm comes from sha256 of "<experiment>:<user id>" (Python's hash() of a string changes with
every process). A new EXPERIMENT setting is a new experiment and deals the users again.

A version that fails (its model raises, or it could not be loaded) must not cost the user the
joke: the request is served by the method's default version instead, and the first such failure
of each version is logged as a warning. A joke records the arm whose version wrote it, so a
fallback joke counts for A when A is the default folder and for no arm otherwise.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, fields, replace
from typing import Any

from generation.experiments import ARMS, ExperimentArms
from generation.registry import MethodRegistry
from generation.service import GenerationService
from generation.types import (
    GenerationBusy,
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    UnknownMethod,
)

log = logging.getLogger(__name__)


def arm_of(experiment: str, user_id: int) -> str:
    """The arm of `user_id` in `experiment`: stable across processes, about half in each."""
    digest = hashlib.sha256(f"{experiment}:{user_id}".encode()).digest()
    return ARMS[int.from_bytes(digest[:8], "big") % len(ARMS)]


@dataclass(frozen=True, slots=True)
class ArmJoke(Joke):
    """A joke and the experiment arm that wrote it (None: no experiment, or no arm's version)."""

    arm: str | None = None


def arm_joke(joke: Joke, *, method: str, arm: str | None) -> ArmJoke:
    values = {item.name: getattr(joke, item.name) for item in fields(Joke)}
    return ArmJoke(**{**values, "method": method, "arm": arm})


def stored_fields(joke: Joke) -> dict[str, Any]:
    """What a joke row keeps of a served joke, as `storage.save_joke` and `storage.OfferedJoke`
    name it: one mapping for chat and inline jokes, so both record the same provenance."""
    return {
        "text": joke.text,
        "method": joke.method,
        "model": joke.model,
        "params": dict(joke.params),
        "latency_ms": joke.latency_ms,
        "candidate_rank": joke.rank,
        "candidates": joke.candidates,
        "judge_score": joke.judge_score,
        "judge_version": joke.judge_version,
        "arm": joke.arm if isinstance(joke, ArmJoke) else None,
    }


def failed(error: GenerationError) -> bool:
    """Whether the version itself failed: its model raised (the worker keeps that exception as
    the cause), or it is not there (it could not be loaded). A draw with nothing fit to show is
    the version's own result instead, and gets the user the usual apology, as it would in A."""
    return error.__cause__ is not None or isinstance(error, UnknownMethod)


class Arms:
    """Sends a user's requests to their arm's version of the method under experiment."""

    def __init__(self, service: GenerationService, registry: MethodRegistry) -> None:
        self.service = service
        self.registry = registry
        self._failed: set[str] = set()  # versions whose failure was logged already

    @property
    def experiment(self) -> ExperimentArms | None:
        return self.registry.experiment

    def arm_for(self, user_id: int, method: str) -> str | None:
        """The user's arm when `method` is under experiment, else None."""
        running = self.experiment
        if running is None or method != running.method:
            return None
        return arm_of(running.experiment.name, user_id)

    def versions(self) -> dict[str, str]:
        """{arm: model version} of the arms whose models are loaded (for /stats)."""
        running = self.experiment
        if running is None:
            return {}
        found = {}
        for arm, name in running.methods.items():
            try:
                method = self.registry.method(name)
            except GenerationError:  # an optional version that failed to load
                continue
            if self.registry.is_loaded(method.backend_key):
                found[arm] = self.registry.backend(name).model_id
        return found

    async def generate(self, request: GenerationRequest, user_id: int) -> list[Joke]:
        """The service's jokes for `request`, written by the user's arm's version when its
        method is under experiment (then `ArmJoke`s naming the arm)."""
        arm = self.arm_for(user_id, request.method)
        running = self.experiment
        if arm is None or running is None:
            return await self.service.generate(request)
        served = running.methods[arm]
        try:
            jokes = await self.service.generate(replace(request, method=served))
        except (GenerationBusy, GenerationTimeout):
            raise  # the version is fine; it is the load, and a second try would add to it
        except GenerationError as error:
            if served == request.method or not self.service.running or not failed(error):
                raise
            self._note_failure(served, error)
            jokes = await self.service.generate(request)
            arm = running.arm_of_method(request.method)
        return [arm_joke(joke, method=request.method, arm=arm) for joke in jokes]

    def _note_failure(self, version: str, error: GenerationError) -> None:
        if version in self._failed:
            log.debug("%s failed again, served by the default version: %s", version, error)
            return
        self._failed.add(version)
        log.warning(
            "experiment version %s failed (%s); its users get the default version instead "
            "while it fails (logged once)",
            version,
            error,
        )


__all__ = ["ArmJoke", "Arms", "arm_joke", "arm_of"]
