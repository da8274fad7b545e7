"""Best of N: the selector's filtering and ranking, and the service drawing N in one call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from generation.registry import MethodRegistry
from generation.selection import Candidate, Selector, distinct
from generation.service import GenerationService
from generation.types import GenerationError, GenerationRequest


@dataclass(frozen=True)
class FakeVerdict:
    clean: bool
    copied: bool


class FakeChecker:
    """Unclean: any text with «бред»; copied: any text with «копия»."""

    def check(self, text: str, prompt: str, *, ended: bool = True) -> FakeVerdict:
        return FakeVerdict(clean="бред" not in text and ended, copied="копия" in text)


@dataclass(frozen=True)
class FakeScore:
    liked: float
    bpc: float | None


class FakeJudge:
    """Likes a text by its count of «ха»; fluency (bpc) falls with its count of «гладко»."""

    version = "judge@fake01"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> list[FakeScore]:
        self.calls.append(list(texts))
        return [FakeScore(t.count("ха") / 10, 3.0 - t.count("гладко")) for t in texts]


def selector(weight: float = 1.0) -> Selector:
    return Selector(None, None, judge_weight=weight, checker=FakeChecker(), judge=FakeJudge())


def cands(*texts: str) -> list[Candidate]:
    return [Candidate(text, seed, True) for seed, text in enumerate(texts)]


def test_drops_unclean_and_copied_and_ranks_by_the_judge() -> None:
    ranked = selector().rank(
        "Кот", cands("Кот ха.", "Кот бред ха ха ха.", "Кот ха ха.", "Кот копия ха ха ха.")
    )
    assert [r.candidate.text for r in ranked] == ["Кот ха ха.", "Кот ха."]
    assert ranked[0].liked == pytest.approx(0.2)
    assert not any(r.copied for r in ranked)


def test_fluency_breaks_ties_and_weight_zero_ranks_by_fluency_alone() -> None:
    texts = cands("Кот ха.", "Кот ха гладко.", "Кот ха ха.")
    assert [r.candidate.seed for r in selector(1.0).rank("Кот", texts)] == [2, 0, 1]
    assert [r.candidate.seed for r in selector(0.0).rank("Кот", texts)] == [1, 0, 2]
    # equal judge scores: the more fluent one wins whatever the weight below 1
    tie = cands("Кот ха.", "Кот ха гладко!")
    assert selector(0.9).rank("Кот", tie)[0].candidate.seed == 1


def test_a_joke_without_its_own_sentence_end_is_not_clean() -> None:
    ranked = selector().rank(
        "Кот", [Candidate("Кот ха ха…", 0, False), Candidate("Кот ха.", 1, True)]
    )
    assert [r.candidate.seed for r in ranked] == [1]


def test_only_the_least_bad_clean_copy_when_nothing_passes() -> None:
    ranked = selector().rank("Кот", cands("Кот бред.", "Кот копия ха.", "Кот копия ха ха."))
    assert [(r.candidate.text, r.copied) for r in ranked] == [("Кот копия ха ха.", True)]
    assert selector().rank("Кот", cands("Кот бред.", "Кот бред ха.")) == []


def test_duplicates_are_judged_once() -> None:
    chooser = selector()
    ranked = chooser.rank("Кот", cands("Кот ха.", "кот  ХА.", "Кот ха ха."))
    assert len(ranked) == 2
    assert chooser.judge.calls == [["Кот ха.", "Кот ха ха."]]
    assert [c.seed for c in distinct(cands("А б.", "а Б.", "В."))] == [0, 2]


def test_a_selector_that_cannot_load_is_inactive_and_says_why(tmp_path: Any) -> None:
    chooser = Selector(tmp_path / "no-checks", tmp_path / "no-judge")
    assert chooser.load() is False
    assert not chooser.active
    assert "one candidate per joke" in chooser.status
    assert "no-checks" in chooser.status or "No such file" in chooser.status
    # inactive: every distinct candidate, in draw order, unjudged
    ranked = chooser.rank("Кот", cands("Кот бред.", "Кот ха."))
    assert [(r.candidate.seed, r.liked) for r in ranked] == [(0, None), (1, None)]


def test_weight_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="judge_weight"):
        Selector(None, None, judge_weight=1.5)


# -- in the service ----------------------------------------------------------------------------


class ScriptedBackend:
    """Writes, for seed s, the text script[s % len(script)] after the prompt."""

    model_id = "scripted-1"

    def __init__(self, script: Sequence[str]) -> None:
        self.script = list(script)
        self.calls: list[list[int | None]] = []
        self.params: list[dict[str, Any]] = []

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        self.calls.append(list(seeds))
        self.params.append(dict(params))
        return [
            f"{p} {self.script[(s or 0) % len(self.script)]}"
            for p, s in zip(prompts, seeds, strict=True)
        ]

    def warmup(self) -> None:
        pass


def registry(backend: ScriptedBackend, candidates: int) -> MethodRegistry:
    reg = MethodRegistry()
    reg.add_backend("b", backend)
    reg.add_method("sample", "Sample", "b", {"do_sample": True}, candidates=candidates)
    beam = {"do_sample": False, "num_beams": 4}
    reg.add_method("beam", "Beam", "b", beam, candidates=candidates)
    return reg


async def run(service: GenerationService, request: GenerationRequest) -> Any:
    await service.start()
    try:
        return await service.generate(request)
    finally:
        await service.stop()


def test_service_draws_n_in_one_call_and_returns_the_ranked_draw() -> None:
    backend = ScriptedBackend(["ха.", "бред ха ха ха.", "ха ха ха.", "копия.", "ха ха."])
    service = GenerationService(registry(backend, 5), batch_window_ms=0, selector=selector())
    jokes = asyncio.run(run(service, GenerationRequest("Кот", "sample", seed=10)))
    assert backend.calls == [[10, 11, 12, 13, 14]]
    assert [j.text for j in jokes] == ["Кот ха ха ха.", "Кот ха ха.", "Кот ха."]
    assert [j.rank for j in jokes] == [0, 1, 2]
    assert {j.candidates for j in jokes} == {5}
    assert {j.judge_version for j in jokes} == {"judge@fake01"}
    assert jokes[0].judge_score == pytest.approx(0.3)
    assert jokes[0].params["seed"] == 12


def test_service_draws_again_once_then_gives_up() -> None:
    backend = ScriptedBackend(["бред."])
    service = GenerationService(registry(backend, 3), batch_window_ms=0, selector=selector())
    with pytest.raises(GenerationError, match="no usable joke"):
        asyncio.run(run(service, GenerationRequest("Кот", "sample", seed=0)))
    assert backend.calls == [[0, 1, 2], [3, 4, 5]]


def test_a_second_draw_can_rescue_the_request() -> None:
    backend = ScriptedBackend(["бред.", "бред.", "бред.", "ха."])
    service = GenerationService(registry(backend, 3), batch_window_ms=0, selector=selector())
    jokes = asyncio.run(run(service, GenerationRequest("Кот", "sample", seed=0)))
    assert [j.text for j in jokes] == ["Кот ха."]
    assert jokes[0].params["seed"] == 3


def test_beam_search_is_drawn_again_twice_as_wide() -> None:
    backend = ScriptedBackend(["бред.", "бред.", "ха."])
    service = GenerationService(registry(backend, 2), batch_window_ms=0, selector=selector())
    jokes = asyncio.run(run(service, GenerationRequest("Кот", "beam")))
    assert backend.calls == [[0, 1], [2, 3]]
    assert backend.params[0]["num_beams"] == 4 and backend.params[1]["num_beams"] == 8
    assert [(j.text, j.params["variant"], j.params["num_beams"]) for j in jokes] == [
        ("Кот ха.", 2, 8)
    ]


def test_a_method_with_a_redraw_preset_draws_again_with_it() -> None:
    """The served `gpt`: when every beam is unfit, a twice-as-wide search; when that fails too,
    a draw with the redraw preset (sampling)."""
    backend = ScriptedBackend(["бред."] * 6 + ["ха."])
    reg = MethodRegistry()
    reg.add_backend("b", backend)
    sampling = {"do_sample": True, "temperature": 0.6}
    beam = {"do_sample": False, "num_beams": 4}
    reg.add_method("beam", "Beam", "b", beam, candidates=3, redraw_params=sampling)
    service = GenerationService(reg, batch_window_ms=0, selector=selector())
    jokes = asyncio.run(run(service, GenerationRequest("Кот", "beam", seed=0)))
    assert backend.calls == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert backend.params == [beam, {**beam, "num_beams": 8}, sampling]
    assert [(j.text, j.params["seed"], j.params["do_sample"]) for j in jokes] == [
        ("Кот ха.", 6, True)
    ]


def test_without_a_selector_one_row_per_joke_as_before() -> None:
    backend = ScriptedBackend(["бред.", "ха."])
    service = GenerationService(registry(backend, 5), batch_window_ms=0)
    jokes = asyncio.run(run(service, GenerationRequest("Кот", "sample", seed=0)))
    assert backend.calls == [[0]]
    assert [(j.text, j.rank, j.candidates, j.judge_score) for j in jokes] == [
        ("Кот бред.", 0, 1, None)
    ]
    assert "no selector" in service.selection_status


def test_a_judge_that_fails_while_scoring_costs_no_joke(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenJudge(FakeJudge):
        def score(self, texts: Sequence[str]) -> list[FakeScore]:
            raise RuntimeError("judge exploded")

    chooser = Selector(None, None, checker=FakeChecker(), judge=BrokenJudge())
    ranked = chooser.rank("Кот", cands("Кот бред.", "Кот ха.", "Кот ха ха."))
    assert [(r.candidate.seed, r.liked) for r in ranked] == [(1, None), (2, None)]
    assert "judge exploded" in caplog.text


def test_checks_that_fail_leave_the_draw_unchecked(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenChecker(FakeChecker):
        def check(self, text: str, prompt: str, *, ended: bool = True) -> FakeVerdict:
            raise RuntimeError("dictionary gone")

    chooser = Selector(None, None, checker=BrokenChecker(), judge=FakeJudge())
    ranked = chooser.rank("Кот", cands("Кот бред.", "Кот ха."))
    assert [r.candidate.seed for r in ranked] == [0, 1]
    assert "dictionary gone" in caplog.text


def test_a_clean_copy_is_shown_only_after_a_second_draw_found_nothing_better() -> None:
    backend = ScriptedBackend(["копия ха.", "бред.", "бред.", "бред."])
    service = GenerationService(registry(backend, 2), batch_window_ms=0, selector=selector())
    jokes = asyncio.run(run(service, GenerationRequest("Кот", "sample", seed=0)))
    assert backend.calls == [[0, 1], [2, 3]]
    assert [(j.text, j.params["seed"]) for j in jokes] == [("Кот копия ха.", 0)]


def test_a_second_draw_beats_the_first_draws_copy() -> None:
    backend = ScriptedBackend(["копия ха.", "бред.", "ха.", "бред."])
    service = GenerationService(registry(backend, 2), batch_window_ms=0, selector=selector())
    jokes = asyncio.run(run(service, GenerationRequest("Кот", "sample", seed=0)))
    assert [(j.text, j.params["seed"]) for j in jokes] == [("Кот ха.", 2)]


def test_the_service_gives_a_backend_that_can_avoid_copies_the_checks_index() -> None:
    class Avoiding(ScriptedBackend):
        def avoid_copies(self, index: Any) -> None:
            self.indexes.append(index)

    class Indexed(FakeChecker):
        copies = object()

    backend = Avoiding(["ха."])
    backend.indexes = []  # type: ignore[attr-defined]
    chooser = Selector(None, None, checker=Indexed(), judge=FakeJudge())
    service = GenerationService(registry(backend, 2), batch_window_ms=0, selector=chooser)
    asyncio.run(run(service, GenerationRequest("Кот", "beam")))
    assert backend.indexes == [Indexed.copies]  # type: ignore[attr-defined]
    off = Avoiding(["ха."])
    off.indexes = []  # type: ignore[attr-defined]
    plain = GenerationService(registry(off, 2), batch_window_ms=0)
    asyncio.run(run(plain, GenerationRequest("Кот", "beam")))
    assert off.indexes == [None]  # type: ignore[attr-defined]
