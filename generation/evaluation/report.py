"""Render docs/QUALITY.md from scored outputs; the prose lives in `quality_template.md`.

Only the text between `<!-- notes:start -->` and `<!-- notes:end -->` of an existing report is
kept, so what a person wrote about the results survives a re-run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template

from generation.evaluation.reader import Scored, Summary

TEMPLATE = Path(__file__).with_name("quality_template.md")
TARGETS = {"gpt": 0.95, "gpt-sample": 0.95, "diffuseq": 0.80}
MAX_COPIED = 0.05
_NOTES_RE = re.compile(r"<!-- notes:start -->\n?(.*?)\n?<!-- notes:end -->", re.S)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def headline_table(rows: Sequence[Summary]) -> str:
    lines = [
        "| method | candidates (N) | words | **clean and not copied** | copied | no joke "
        "| clean | judged | GPT bpc |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.label} | {r.candidates} | {r.n} | **{_pct(r.ok)}** | {_pct(r.copied)} "
            f"| {_pct(r.no_joke)} | {_pct(r.clean)} | {_f(r.judged)} | {_f(r.bpc)} |"
        )
    return "\n".join(lines)


def target_lines(rows: Sequence[Summary]) -> str:
    out = []
    for r in rows:
        wanted = TARGETS.get(r.label)
        if wanted is None:
            continue
        met = r.ok >= wanted and r.copied <= MAX_COPIED
        out.append(
            f"- `{r.label}`: {_pct(r.ok)} clean and not copied, {_pct(r.copied)} copied — "
            f"**{'met' if met else 'not met'}**."
        )
    return "\n".join(out)


def problems_table(rows: Sequence[Summary]) -> str:
    kinds = sorted({kind for r in rows for kind in r.problems})
    if not kinds:
        return "(none)"
    lines = ["| method | " + " | ".join(kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for r in rows:
        cells = " | ".join(_pct(r.problems.get(kind, 0.0)) for kind in kinds)
        lines.append(f"| {r.label} | {cells} |")
    return "\n".join(lines)


def sample_lines(label: str, scored: Sequence[Scored], picks: Sequence[str]) -> str:
    by_word = {s.prompt: s for s in scored}
    lines = [f"### {label}", ""]
    for word in picks:
        item = by_word.get(word)
        if item is None or not item.text:
            lines.append(f"- **{word}** → *(no joke)*")
            continue
        text = " / ".join(line.strip() for line in item.text.splitlines() if line.strip())
        mark = "" if item.ok else f" ✗ ({'; '.join(item.problems) or 'copied'})"
        lines.append(f"- **{word}** → {text}{mark}")
    return "\n".join(lines)


def existing_notes(path: Path) -> str:
    if not path.is_file():
        return "(none yet)"
    found = _NOTES_RE.search(path.read_text(encoding="utf-8"))
    return found.group(1).strip() if found else "(none yet)"


def render(
    rows: Sequence[Summary],
    samples: Mapping[str, Sequence[Scored]],
    picks: Sequence[str],
    fields: Mapping[str, str],
) -> str:
    """The whole report; `fields` fills command, timing, words, date, machine, models, notes."""
    sample_text = "\n\n".join(sample_lines(label, s, picks) for label, s in samples.items())
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        headline=headline_table(rows),
        targets=target_lines(rows),
        problems=problems_table(rows),
        samples=sample_text,
        **fields,
    )


__all__ = ["headline_table", "problems_table", "render", "sample_lines", "target_lines"]
