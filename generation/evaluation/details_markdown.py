"""Write docs/QUALITY-details.md (and the raw figures as JSON beside it) from a `Report`.

The prose lives in `details_template.md` and, for the optional sections, in
`details_diversity_template.md` and `details_sweep_template.md` (string.Template fields); the
functions here only build tables and the short fragments that depend on what was measured.
Only the text between `<!-- notes:start -->` and `<!-- notes:end -->` of an existing report is
kept, so hand-written notes survive a re-run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, fields
from pathlib import Path
from string import Template
from typing import Any

from generation.evaluation.pipeline import Report
from generation.registry import DIFFUSEQ, GPT

HERE = Path(__file__).parent
NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"
DEFAULT_COMMAND = "python -m generation.evaluation.details"
#: Targets from the project brief.
TARGET_GOLD_BPC = 2.1
TARGET_GPT_VALID_RATE = 0.95
#: Reference figures (a character 7-gram modified Kneser-Ney model), for scale only.
REFERENCE_CHAR7_KN = {"gold": 2.24, "test": 1.97}


def _template(name: str) -> Template:
    return Template((HERE / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------------------
# Cells
# ---------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def table(columns: list[str], rows: list[list[str]]) -> str:
    """A Markdown table; every cell is already a string."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Header fragments
# ---------------------------------------------------------------------------------------------


def stage_loads(report: Report) -> str:
    if not report.load:
        return ""
    loads = ", ".join(f"{k} {v:.1f}" for k, v in report.load.items())
    return f"; load average after each stage: {loads}"


def models_line(report: Report) -> str:
    gpt, diffuseq = report.models.get("gpt"), report.models.get("diffuseq")
    line = f"GPT `{(gpt or {}).get('path', '?')}`"
    if gpt:
        served = gpt.get("served", {})
        line += (
            f" ({gpt.get('weights_mb')} MB; served with GPT_QUANTIZE={served.get('quantize')})"
        )
    if diffuseq:
        line += f", DiffuSeq `{diffuseq.get('path')}` ({diffuseq.get('weights_mb')} MB)"
    if report.config.get("quick"):
        line += " — **quick mode: small subsets, figures are indicative only**"
    return line


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def bpc_table(bpc: dict[str, Any]) -> str:
    names = {"gpt": "our GPT (float32, as trained)"}
    for key in bpc["bpc"]:
        if key.startswith("gpt-"):
            names[key] = f"our GPT as served ({key[4:]} weights)"
    names.update({"trigram-kn": "token 3-gram, interpolated KN", "unigram": "token unigram, add-k"})
    rows = [
        [label, _f(bpc["bpc"][key].get("test")), _f(bpc["bpc"][key].get("gold"))]
        for key, label in names.items()
    ]
    ref = REFERENCE_CHAR7_KN
    rows.append(["*(reference) char 7-gram, modified KN*", f"*{ref['test']}*", f"*{ref['gold']}*"])
    return table(["model", "test (held-out)", "gold (CleanComedy)"], rows)


MAIN_COLUMNS = [
    "method", "n", "valid", "starts", "word glued on", "word doubled", "model wrote the word",
    "ends", "no rep. 3-gram", "20–200 chars", '"…" fallback', "empty", "distinct-1",
    "distinct-2", "mean chars", "GPT bpc", "median latency",
]  # fmt: skip


def main_table(report: Report) -> str:
    rows = [
        [
            method,
            str(row["n"]),
            *(_pct(row[k]) for k in ("valid", "starts", "continues_word", "word_doubled")),
            _pct(row.get("model_started")),
            *(_pct(row[k]) for k in ("ends", "no_repeat", "length_ok")),
            _pct(row["ellipsis_fallback"]),
            _pct(row["empty"]),
            _f(row["distinct_1"]),
            _f(row["distinct_2"]),
            f"{row['mean_chars']:.0f}",
            _f(row.get("fluency_bpc")),
            _ms(row["median_latency_ms"]),
        ]
        for method, row in report.main.items()
    ]
    return table(MAIN_COLUMNS, rows)


def by_source_table(report: Report) -> str:
    rows = []
    for method, row in report.main.items():
        by_source = row["by_source"]
        tests, nouns = by_source["test words"]["valid"], by_source["common nouns"]["valid"]
        rows.append([method, _pct(tests), _pct(nouns)])
    return table(["method", "test words", "common nouns"], rows)


def diversity_table(report: Report) -> str:
    columns = [
        "method", "samples", "valid", "model wrote the word", "distinct-1", "distinct-2",
        "self-BLEU", "GPT bpc", "time per joke (batched)",
    ]  # fmt: skip
    rows = [
        [
            method,
            str(row["n"]),
            _pct(row["valid"]),
            _pct(row["model_started"]),
            *(_f(row[k]) for k in ("distinct_1", "distinct_2", "self_bleu")),
            _f(row.get("fluency_bpc")),
            _ms(1000 * row["seconds_per_joke_batched"]),
        ]
        for method, row in report.diversity.items()
    ]
    return table(columns, rows)


def sweep_table(report: Report) -> str:
    columns = [
        "sampler", "steps", "words", "latency (1 joke)", "time per joke (batched)", "valid",
        "model wrote the word", "ends", "distinct-1", "distinct-2", "GPT bpc",
    ]  # fmt: skip
    rows = [
        [
            str(row.get("sampler")),
            str(row["steps"]),
            str(row["words"]),
            ("≈ " if row.get("latency_extrapolated") else "") + _ms(row["median_latency_ms"]),
            _ms(1000 * row["seconds_per_joke_batched"]),
            *(_pct(row[k]) for k in ("valid", "model_started", "ends")),
            *(_f(row[k]) for k in ("distinct_1", "distinct_2")),
            _f(row.get("fluency_bpc")),
        ]
        for row in report.sweep
    ]
    return table(columns, rows)


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def _section(text: str) -> str:
    """An optional section as the main template expects it: followed by one blank line."""
    return text.rstrip("\n") + "\n\n"


def diversity_section(report: Report) -> str:
    if not report.diversity:
        return ""
    any_row = next(iter(report.diversity.values()))
    return _section(
        _template("details_diversity_template.md").substitute(
            samples_per_word=report.config["samples_per_word"],
            words=any_row["words"],
            table=diversity_table(report),
        )
    )


def sweep_section(report: Report) -> str:
    if not report.sweep:
        return ""
    preset = report.presets.get(DIFFUSEQ, {})
    return _section(
        _template("details_sweep_template.md").substitute(
            sampler=preset.get("sampler"),
            mbr=preset.get("mbr"),
            latency_words=report.config["sweep_latency_words"],
            full_steps_words=report.config["full_steps_words"],
            table=sweep_table(report),
        )
    )


def gpt_target(report: Report) -> str:
    row = report.main.get(GPT)
    if not row:
        return ""
    met = _met(row["valid"] >= TARGET_GPT_VALID_RATE)
    return (
        f"\nTarget: valid-joke rate ≥ {TARGET_GPT_VALID_RATE:.0%} for `gpt` — "
        f"{_pct(row['valid'])}: {met}.\n"
    )


def samples_section(report: Report) -> str:
    parts = []
    for method, items in report.samples.items():
        lines = [f"### {method}", ""]
        for item in items:
            text = item["text"].replace("\n", " / ") if item["text"] else "*(no joke)*"
            lines.append(f"- **{item['word']}** → {text}")
        parts.append("\n".join(lines) + "\n\n")
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _set_sizes(bpc: dict[str, Any]) -> dict[str, Any]:
    return {
        f"{name}_{what}": bpc[key][name]
        for name in ("test", "gold")
        for what, key in (("jokes", "jokes"), ("chars", "chars"), ("tokens", "tokens"))
    }


def render_markdown(report: Report, command: str, notes: str | None = None) -> str:
    """The whole page; `notes` is what goes between the notes markers."""
    bpc, m = report.bpc, report.machine
    gold = bpc["bpc"]["gpt"].get("gold", float("nan"))
    return _template("details_template.md").substitute(
        command=command,
        date=m["date"],
        minutes=f"{report.seconds / 60:.1f}",
        cpu=m["cpu"],
        cores=m["cores"],
        start_load=_f(m.get("load_avg_1m_at_start"), 1),
        torch=m["torch"],
        threads=m["torch_threads"],
        python=m["python"],
        stage_loads=stage_loads(report),
        models=models_line(report),
        unigram_k=bpc["unigram_k"],
        kn_discounts=", ".join(f"{d:.2f}" for d in bpc["kn_discounts"]),
        bpc_table=bpc_table(bpc),
        **_set_sizes(bpc),
        gold_target=TARGET_GOLD_BPC,
        gold_bpc=_f(gold),
        gold_met=_met(gold <= TARGET_GOLD_BPC),
        n_words=len(report.words),
        n_nouns=len(report.nouns),
        nouns=", ".join(report.nouns),
        latency_n=next((row.get("latency_n", 0) for row in report.main.values()), 0),
        main_table=main_table(report),
        by_source_table=by_source_table(report),
        presets="\n".join(
            f"- `{method}`: `{json.dumps(params, ensure_ascii=False)}`"
            for method, params in report.presets.items()
        ),
        gpt_target=gpt_target(report),
        diversity=diversity_section(report),
        sweep=sweep_section(report),
        samples=samples_section(report),
        notes=(notes or "").strip() or "_(none yet)_",
        test_words=", ".join(report.words),
    )


def existing_notes(path: Path) -> str | None:
    """The hand-written notes of an existing report, or None without a report or markers."""
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8")
    start, end = text.find(NOTES_START), text.find(NOTES_END)
    if start == -1 or end == -1 or end < start:
        return None
    return text[start + len(NOTES_START) : end].strip()


def _json(report: Report) -> str:
    return json.dumps(asdict(report), ensure_ascii=False, indent=1, default=str) + "\n"


def write_report(report: Report, out: Path, command: str) -> None:
    """`out` as Markdown (its notes kept) with the raw figures as JSON beside it, or, for a
    `.json` path, the JSON alone."""
    out.parent.mkdir(parents=True, exist_ok=True)
    report.config["command"] = command
    if out.suffix == ".json":
        out.write_text(_json(report), encoding="utf-8")
        return
    out.write_text(render_markdown(report, command, existing_notes(out)), encoding="utf-8")
    # The raw figures, next to the markdown, for anyone who wants more digits.
    out.with_suffix(".json").write_text(_json(report), encoding="utf-8")


def load_report(path: Path, command: str | None = None) -> tuple[Report, str]:
    """A report saved as JSON by an earlier run, and the command that produced it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Report)}
    report = Report(**{k: v for k, v in data.items() if k in known})
    return report, command or report.config.get("command") or DEFAULT_COMMAND


__all__ = ["existing_notes", "load_report", "render_markdown", "write_report"]
