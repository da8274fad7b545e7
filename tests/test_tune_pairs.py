"""Reading exported votes for tuning, and which jokes become preference pairs."""

from __future__ import annotations

import json
from typing import Any

from generation.tune.pairs import PairSettings, build_pairs, content_lemmas, is_heldout
from generation.tune.ratings import RatedJoke, read_rated

NO_HOLDOUT = PairSettings(heldout=0.0)


def row(text: str, method: str = "gpt", likes: int = 0, dislikes: int = 0, **extra: Any) -> str:
    record = {"prompt": text.split()[0], "text": text, "method": method}
    record |= {"likes": likes, "dislikes": dislikes, **extra}
    return json.dumps(record, ensure_ascii=False)


def joke(
    text: str, method: str = "gpt", likes: int = 0, dislikes: int = 0, prompt: str = ""
) -> RatedJoke:
    return RatedJoke(method, prompt or text.split()[0], text, likes, dislikes)


def test_bad_lines_are_skipped_counted_and_named() -> None:
    lines = [
        row("Кот пришёл домой.", likes=2, id=1),
        "{not json",
        "[1, 2]",
        row("Кот ушёл.", method="poetry", likes=1, id=2),
        row("Кот спит.", likes=-1, id=3),
        row("Кот ест.", id=4),  # no votes
        json.dumps({"id": 5, "method": "gpt", "likes": 1, "dislikes": 0}),  # no text
        row("Кот пришёл домой.", likes=2, id=1),  # the same id again
        "",
        row("Кот  пришёл домой.", dislikes=1, id=6),  # the same joke again, another id: pooled
    ]
    jokes, report = read_rated(lines)
    assert report.lines == 10 and report.rows == 2 and report.jokes == 1
    assert [(j.likes, j.dislikes, j.ids) for j in jokes] == [(2, 1, [1, 6])]
    assert report.skipped == {
        "not JSON": 1,
        "not a JSON object": 1,
        "unknown method": 1,
        "likes/dislikes not non-negative integers": 1,
        "no votes": 1,
        "no joke text": 1,
        "duplicate id (same joke's votes counted once)": 1,
    }
    text = "\n".join(report.lines_of_text())
    assert "unknown method (line 4)" in text and "'poetry' ×1" in text
    assert "not JSON (line 2)" in text and "duplicate id" in text and "(line 8)" in text


def test_liked_over_disliked_of_the_same_method_and_prompt() -> None:
    jokes = [
        joke("Кот пришёл домой и лёг спать.", likes=3, dislikes=1),
        joke("Кот кот кот.", dislikes=2),
        joke("Кот запел песню.", method="diffuseq", likes=5),  # another method: not its partner
        joke("Кот молчит.", likes=1, dislikes=1),  # a tie: neither liked nor disliked
    ]
    pairs = build_pairs(jokes, NO_HOLDOUT)
    assert [(p.chosen.text, p.rejected.text, p.kind) for p in pairs] == [
        ("Кот пришёл домой и лёг спать.", "Кот кот кот.", "liked")
    ]
    assert pairs[0].similarity == 1.0 and not pairs[0].heldout


def test_classic_jokes_are_preferred_to_disliked_generated_ones() -> None:
    jokes = [
        joke("Штирлиц шёл по лесу.", method="classic", likes=1),
        joke("Штирлиц сидел в баре.", method="classic"),  # shown, no strong votes: still a classic
        joke("Штирлиц выпил чай.", method="classic", dislikes=3),  # disliked: never chosen
        joke("Штирлиц штирлиц лес.", method="gpt-sample", dislikes=1),
    ]
    jokes[1] = RatedJoke("classic", "Штирлиц", "Штирлиц сидел в баре.", 1, 1)
    pairs = build_pairs(jokes, NO_HOLDOUT)
    chosen = sorted(p.chosen.text for p in pairs if p.kind == "classic")
    assert chosen == ["Штирлиц сидел в баре.", "Штирлиц шёл по лесу."]
    assert {p.rejected.text for p in pairs} == {"Штирлиц штирлиц лес.", "Штирлиц выпил чай."}
    # the disliked classic is only ever rejected, against a liked classic
    assert [p.kind for p in pairs if p.rejected.method == "classic"] == ["liked"]


def test_similar_words_pair_jokes_of_different_prompts() -> None:
    assert {"кошка", "молоко"} <= content_lemmas("Кошки не любят молока, сказал он.")
    assert "он" not in content_lemmas("Кошки не любят молока, сказал он.")
    jokes = [
        joke("Кошка пьёт молоко на кухне.", likes=2, prompt="Кошка"),
        joke("Молоко убежало от кошки.", dislikes=2, prompt="Молоко"),  # shared lemmas
        joke("Поезд опоздал на час.", likes=2, prompt="Поезд"),  # nothing shared
    ]
    pairs = build_pairs(jokes, NO_HOLDOUT)
    assert [(p.chosen.prompt, p.rejected.prompt) for p in pairs] == [("Кошка", "Молоко")]
    assert 0 < pairs[0].similarity < 1
    strict = build_pairs(jokes, PairSettings(heldout=0.0, min_similarity=0.9))
    assert strict == []


def test_each_disliked_joke_gets_a_few_partners_and_holdout_follows_jokes() -> None:
    liked = [joke(f"Кот номер {i} пришёл.", likes=1, prompt="Кот") for i in range(6)]
    disliked = [joke(f"Кот {i} ушёл.", dislikes=1, prompt="Кот") for i in range(4)]
    pairs = build_pairs(liked + disliked, PairSettings(per_joke=2, heldout=0.3))
    assert len(pairs) == 8
    for pair in pairs:
        expected = is_heldout(pair.chosen, 0.3) or is_heldout(pair.rejected, 0.3)
        assert pair.heldout == expected
    assert any(p.heldout for p in pairs) and not all(p.heldout for p in pairs)


def test_inline_picks_beat_what_they_were_picked_over_and_arms_are_their_method() -> None:
    offer = {"inline_offer": 7}
    lines = [
        row("Кот и молоко.", id=7, inline_chosen=False, **offer),
        row("Кот и сметана.", method="gpt[B]", id=8, inline_chosen=True, **offer),
        row("Кот и сыр.", id=9, inline_chosen=False, **offer),
        row("Кот и хлеб.", id=10, inline_chosen=None, inline_offer=None),  # no pick, no votes
    ]
    jokes, report = read_rated(lines)
    assert report.rows == 3 and report.skipped == {"no votes": 1}
    assert {j.method for j in jokes} == {"gpt"}  # the experiment's arm B of gpt
    pairs = build_pairs(jokes, NO_HOLDOUT)
    assert sorted((p.chosen.text, p.rejected.text, p.kind) for p in pairs) == [
        ("Кот и сметана.", "Кот и молоко.", "inline"),
        ("Кот и сметана.", "Кот и сыр.", "inline"),
    ]
