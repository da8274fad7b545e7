"""A tuned version folder brings its judge: an experiment's arm whose folder has `judge/` ranks
its candidates with that judge (generation/experiments.py `own_judges`, the selector's
`own_judges`), the other arm keeps the default judge, and a judge that cannot be loaded leaves the
arm to the default one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from generation.config import GenerationConfig
from generation.experiments import own_judges
from generation.registry import MethodRegistry, build_registry
from generation.selection import Selector
from generation.service import GenerationService
from generation.types import GenerationRequest
from tests.test_selection import FakeChecker, FakeJudge, FakeScore, ScriptedBackend, cands


class SmoothJudge(FakeJudge):
    """The tuned arm's judge: likes «гладко», not «ха» (the default judge's taste)."""

    version = "judge@tuned1"

    def score(self, texts: Sequence[str]) -> list[FakeScore]:
        self.calls.append(list(texts))
        return [FakeScore(t.count("гладко") / 10, 3.0) for t in texts]


def loader(loaded: dict[str, Any], fail: set[str] = frozenset()):  # type: ignore[no-untyped-def]
    """A stand-in for Judge.load: the tuned judge for any folder, recording the GPT it got."""

    def load(folder: Any, gpt: Any = None) -> Any:
        if str(folder) in fail:
            raise OSError(f"no judge in {folder}")
        loaded[str(folder)] = gpt
        return SmoothJudge()

    return load


def selector_with_own(monkeypatch: pytest.MonkeyPatch, fail: set[str] = frozenset()) -> Selector:
    loaded: dict[str, Any] = {}
    monkeypatch.setattr("generation.judge.Judge.load", loader(loaded, fail))
    chooser = Selector(
        None,
        None,
        judge_weight=1.0,
        checker=FakeChecker(),
        judge=FakeJudge(),
        own_judges={"b[B]": ("tuned/judge", lambda: "gpt of B")},
    )
    assert chooser.load()
    chooser.loaded = loaded  # type: ignore[attr-defined]
    return chooser


def test_a_backend_with_its_own_judge_is_ranked_by_it(monkeypatch: pytest.MonkeyPatch) -> None:
    chooser = selector_with_own(monkeypatch)
    assert chooser.loaded == {"tuned/judge": "gpt of B"}  # type: ignore[attr-defined]
    draw = cands("Кот ха ха.", "Кот гладко.", "Кот ха.")
    assert [r.candidate.seed for r in chooser.rank("Кот", draw, "b[B]")] == [1, 0, 2]
    assert [r.candidate.seed for r in chooser.rank("Кот", draw, "b")] == [0, 2, 1]
    assert [r.candidate.seed for r in chooser.rank("Кот", draw)] == [0, 2, 1]
    assert chooser.version_for("b[B]") == "judge@tuned1"
    assert chooser.version_for("b") == chooser.judge_version == "judge@fake01"
    assert chooser.status == "best of N, judge@fake01; b[B]: judge@tuned1"


def test_an_own_judge_that_cannot_load_leaves_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="generation.selection"):
        chooser = selector_with_own(monkeypatch, fail={"tuned/judge"})
    assert chooser.active and chooser.own_judges == {}
    assert "b[B]'s own judge in tuned/judge could not be loaded" in caplog.text
    draw = cands("Кот ха ха.", "Кот гладко.")
    assert [r.candidate.seed for r in chooser.rank("Кот", draw, "b[B]")] == [0, 1]
    assert chooser.version_for("b[B]") == "judge@fake01"


def test_the_service_stores_which_judge_picked_each_arms_joke(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = ["ха ха.", "гладко.", "ха."]
    reg = MethodRegistry()
    reg.add_backend("b", ScriptedBackend(script))
    reg.add_backend("b[B]", ScriptedBackend(script))
    reg.add_method("sample", "Sample", "b", {"do_sample": True}, candidates=3)
    reg.add_method("sample[B]", "Sample", "b[B]", {"do_sample": True}, candidates=3,
                   version_of="sample")  # fmt: skip
    service = GenerationService(reg, batch_window_ms=0, selector=selector_with_own(monkeypatch))

    async def both() -> tuple[Any, Any]:
        await service.start()
        try:
            a = await service.generate(GenerationRequest("Кот", "sample", seed=0))
            b = await service.generate(GenerationRequest("Кот", "sample[B]", seed=0))
            return a, b
        finally:
            await service.stop()

    a, b = asyncio.run(both())
    assert a[0].text == "Кот ха ха." and {j.judge_version for j in a} == {"judge@fake01"}
    assert b[0].text == "Кот гладко." and {j.judge_version for j in b} == {"judge@tuned1"}


def test_only_a_tuned_arm_folder_with_a_judge_brings_it(tmp_path: Path) -> None:
    base, tuned, plain = (tmp_path / name for name in ("gpt", "gpt-tuned", "gpt-plain"))
    for folder in (base, tuned / "judge", plain, base / "judge"):
        folder.mkdir(parents=True)
    config = GenerationConfig.defaults(gpt_model=str(base), enable_diffuseq=False)
    registry = build_registry(config, experiment=f"gpt-sample:{base},{tuned}")
    found = own_judges(registry)
    # arm A is the method's own model: it keeps JUDGE_MODEL even with a judge/ beside it
    assert list(found) == ["gpt[B]"] and found["gpt[B]"][0] == str(tuned / "judge")
    assert own_judges(build_registry(config, experiment=f"gpt:{base},{plain}")) == {}
    assert own_judges(build_registry(config)) == {}
    service = GenerationService.from_config(registry, config)
    assert service.selector is not None and list(service.selector.own_judge_folders) == ["gpt[B]"]
