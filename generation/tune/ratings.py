"""Reading a `python -m storage.export` file for tuning, forgiving but never silent.

Why not `generation.training.judge_data.read_ratings`: that reader stops at the first broken
line, which is right for a file the judge trains on as is; tuning is fed files people assemble
(concatenated exports, hand edits, a simulator's output), so a bad line is skipped, counted and
named, and only a file with nothing usable is an error. What the judge then trains on is the
cleaned rows (`write_clean`), so both read the same votes.

Rows are pooled by (method, text): the same joke shown twice under two ids is one joke with the
votes of both. The same id twice (an export appended to itself) is a duplicate, and only its first
row counts. An experiment's arm stores its jokes under a version of the method (`gpt[B]`, see
generation/experiments.py); for tuning that is the method itself. A row of an inline offer
(`inline_chosen` true or false, `inline_offer` its offer) counts without votes: a pick is a rating.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.evaluation.metrics import normalize_text
from generation.training.cleaning import norm_key

CLASSIC = "classic"
#: methods a rated joke may come from: the registry's three and real jokes from the collection
KNOWN_METHODS = ("gpt", "gpt-sample", "diffuseq", CLASSIC)
#: how many line numbers of each skip reason the report names
EXAMPLES = 5
_ARM = re.compile(r"\[[^\]]*\]$")


def base_method(name: str) -> str:
    """`gpt[B]` (an experiment's version of `gpt`) -> `gpt`; other names as they are."""
    return _ARM.sub("", name)


@dataclass
class RatedJoke:
    """One joke with the votes of every row that showed it."""

    method: str
    prompt: str
    text: str  # normalised as every model is scored (`normalize_text`)
    likes: int
    dislikes: int
    ids: list[Any] = field(default_factory=list)
    picks: list[tuple[str, bool]] = field(default_factory=list)  # (inline offer, picked there)

    @property
    def key(self) -> str:
        return f"{self.method}\0{norm_key(self.text)}"

    @property
    def liked(self) -> bool:
        return self.likes > self.dislikes

    @property
    def disliked(self) -> bool:
        return self.dislikes > self.likes


@dataclass
class InputReport:
    """What was read, kept and skipped (reason -> count, and the first line numbers)."""

    lines: int = 0
    rows: int = 0  # rows kept before pooling
    jokes: int = 0  # distinct (method, text) after pooling
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[int]] = field(default_factory=dict)
    methods: Counter[str] = field(default_factory=Counter)
    unknown_methods: Counter[str] = field(default_factory=Counter)

    def skip(self, reason: str, line: int) -> None:
        self.skipped[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < EXAMPLES:
            self.examples[reason].append(line)

    def lines_of_text(self) -> list[str]:
        """The report as a person reads it: one line per skip reason."""
        out = [
            f"read {self.lines} lines: {self.rows} rated rows kept, {self.jokes} distinct jokes "
            f"({', '.join(f'{m} {n}' for m, n in sorted(self.methods.items())) or 'none'})"
        ]
        for reason, count in sorted(self.skipped.items()):
            where = ", ".join(map(str, self.examples.get(reason, [])))
            more = ", …" if count > len(self.examples.get(reason, [])) else ""
            out.append(f"skipped {count} line(s): {reason} (line {where}{more})")
        if self.unknown_methods:
            names = ", ".join(f"{m!r} ×{n}" for m, n in self.unknown_methods.most_common())
            out.append(f"unknown methods: {names}; known: {', '.join(KNOWN_METHODS)}")
        return out


def _count(value: Any) -> int | None:
    """A vote count: a non-negative integer (JSON 3 or 3.0), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if value < 0 or value != int(value):
        return None
    return int(value)


def _parse(line: str, known: Collection[str]) -> tuple[dict[str, Any] | None, str]:
    """(record, "") for a usable row, else (None, the reason it is skipped)."""
    try:
        record = json.loads(line)
    except ValueError:
        return None, "not JSON"
    if not isinstance(record, dict):
        return None, "not a JSON object"
    text, method = record.get("text"), record.get("method")
    if not isinstance(text, str) or not normalize_text(text):
        return None, "no joke text"
    if not isinstance(method, str) or not method:
        return None, "no method"
    if base_method(method) not in known:
        return None, "unknown method"
    likes, dislikes = _count(record.get("likes")), _count(record.get("dislikes"))
    if likes is None or dislikes is None:
        return None, "likes/dislikes not non-negative integers"
    picked, offer = record.get("inline_chosen"), record.get("inline_offer")
    if not isinstance(picked, bool) or offer is None:
        picked = offer = None
    if likes + dislikes == 0 and picked is None:
        return None, "no votes"
    record["method"] = base_method(method)
    record["inline_chosen"], record["inline_offer"] = picked, offer
    prompt = record.get("prompt")
    record["prompt"] = prompt if isinstance(prompt, str) else ""
    record["likes"], record["dislikes"] = likes, dislikes
    return record, ""


def read_rated(
    lines: Iterable[str], known: Collection[str] = KNOWN_METHODS
) -> tuple[list[RatedJoke], InputReport]:
    """The rated jokes of an export's lines, pooled by (method, text), and what was skipped."""
    report = InputReport()
    jokes: dict[str, RatedJoke] = {}
    seen_ids: set[str] = set()
    for number, line in enumerate(lines, 1):
        report.lines = number
        if not line.strip():
            continue
        record, reason = _parse(line, known)
        if record is None:
            report.skip(reason, number)
            if reason == "unknown method":
                report.unknown_methods[str(json.loads(line).get("method"))] += 1
            continue
        row_id = record.get("id")
        if row_id is not None:
            marker = json.dumps(row_id)
            if marker in seen_ids:
                report.skip("duplicate id (same joke's votes counted once)", number)
                continue
            seen_ids.add(marker)
        report.rows += 1
        _pool(jokes, record)
    report.jokes = len(jokes)
    report.methods = Counter(joke.method for joke in jokes.values())
    return list(jokes.values()), report


def _pool(jokes: dict[str, RatedJoke], record: dict[str, Any]) -> None:
    joke = RatedJoke(
        method=record["method"],
        prompt=record["prompt"].strip(),
        text=normalize_text(record["text"]),
        likes=0,
        dislikes=0,
    )
    kept = jokes.setdefault(joke.key, joke)
    kept.likes += record["likes"]
    kept.dislikes += record["dislikes"]
    kept.ids.append(record.get("id"))
    if record["inline_chosen"] is not None:
        kept.picks.append((json.dumps(record["inline_offer"]), record["inline_chosen"]))


def read_rated_file(
    path: Path, known: Collection[str] = KNOWN_METHODS
) -> tuple[list[RatedJoke], InputReport]:
    """`read_rated` of a file; undecodable bytes become U+FFFD (the line then usually fails)."""
    with path.open(encoding="utf-8", errors="replace") as stream:
        return read_rated(stream, known)


def write_clean(jokes: Iterable[RatedJoke], path: Path) -> int:
    """The pooled jokes with votes as export rows (what `generation.training.train_judge
    --ratings` reads)."""
    count = 0
    with path.open("w", encoding="utf-8") as stream:
        for joke in jokes:
            if joke.likes + joke.dislikes == 0:
                continue  # an inline pick alone: a preference, not a rating of the joke itself
            row = {
                "prompt": joke.prompt,
                "text": joke.text,
                "method": joke.method,
                "likes": joke.likes,
                "dislikes": joke.dislikes,
            }
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


__all__ = [
    "CLASSIC",
    "KNOWN_METHODS",
    "InputReport",
    "RatedJoke",
    "base_method",
    "read_rated",
    "read_rated_file",
    "write_clean",
]
