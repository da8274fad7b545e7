"""What a tuning run tells people: the lines it prints and the model card it writes."""

from __future__ import annotations

import math
from typing import Any

from generation.tune.result import Measures, TuneConfig, TuneResult


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.1%}"


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def change_lines(result: TuneResult, config: TuneConfig) -> list[str]:
    """What changed, before -> after, in a few lines."""
    before, after = result.before, result.after
    if before is None or after is None:
        return []
    change = result.bpc_change or 0.0
    return [
        f"pairs: {result.train_pairs} trained on, {result.heldout_pairs} held out "
        f"({', '.join(f'{k} {v}' for k, v in result.pairs.items() if k.startswith('kind'))})",
        f"steps: {result.steps} in {result.train_seconds / 60:.1f} min "
        f"(stopped by {result.stopped_by or 'n/a'}); DPO loss {_num(result.first_loss)} -> "
        f"{_num(result.last_loss)} (first / last step)",
        f"held-out preference accuracy: {_pct(before.heldout_accuracy)} (base, likelihood "
        f"margin) -> {_pct(after.heldout_accuracy)} (tuned, implicit reward); likelihood margin "
        f"after: {_pct(after.heldout_likelihood_accuracy)}",
        f"held-out DPO loss: {_num(before.heldout_loss)} -> {_num(after.heldout_loss)}; "
        f"train pairs accuracy: {_pct(before.train_accuracy)} -> {_pct(after.train_accuracy)}",
        f"bits per character, {result.bpc_jokes} test jokes: {before.bpc:.4f} -> "
        f"{after.bpc:.4f} ({change:+.4f}; guard: at most +{config.max_bpc_increase})",
    ]


def _measure_row(name: str, m: Measures | None) -> str:
    if m is None:
        return f"| {name} | n/a | n/a | n/a | n/a | n/a |"
    return (
        f"| {name} | {_pct(m.heldout_accuracy)} | {_pct(m.heldout_likelihood_accuracy)} "
        f"| {_num(m.heldout_loss)} | {_pct(m.train_accuracy)} | {_num(m.bpc)} |"
    )


def _input_rows(result: TuneResult) -> list[str]:
    data: dict[str, Any] = result.input
    methods = ", ".join(f"{m} {n}" for m, n in data.get("methods", {}).items())
    rows = [
        f"- lines read: {data.get('lines', 0)}; rated rows kept: {data.get('rows', 0)}; distinct "
        f"jokes: {data.get('jokes', 0)} ({methods})"
    ]
    for reason, count in data.get("skipped", {}).items():
        rows.append(f"- skipped: {count} ({reason})")
    rows.append("- pairs: " + ", ".join(f"{k} {v}" for k, v in result.pairs.items()))
    return rows


def model_card(result: TuneResult, config: TuneConfig, ratings: str, command: str) -> str:
    """The README.md of the tuned folder: what data it saw, how it was trained, what changed."""
    t = config.train
    judge = result.judge_version or f"not retrained ({result.judge_error or 'disabled'})"
    lines = [
        f"# Model card: `{result.out}` — the GPT tuned on people's votes (DPO)",
        "",
        f"Version `{result.version}`, tuned from `{config.base}` (`{result.base_version}`) by "
        "`python -m generation.tune` (`generation/tune/`). Loads exactly as the base does: "
        f"`GPT_MODEL={result.out}`; its judge: `JUDGE_MODEL={result.out}/judge` ({judge}).",
        "",
        "## Data",
        "",
        f"- ratings file: `{ratings}`, sha256 `{result.ratings_sha256}`",
        *_input_rows(result),
        f"- pair rules: {config.pairs.per_joke} partners of each kind per disliked joke, lemma "
        f"Jaccard at least {config.pairs.min_similarity} (the same prompt always matches); "
        f"{config.pairs.heldout:.0%} of jokes held out (a pair with a held-out joke is held out)",
        "",
        "## Training",
        "",
        f"DPO (sigmoid loss) against the frozen base, beta {t.beta}, AdamW lr {t.lr} (warm-up "
        f"{t.warmup_steps} steps, cosine to 10 %), {t.batch_size} pairs a step, dropout off, "
        f"bf16 autocast {'on' if t.bf16 else 'off'}; {result.steps} steps in "
        f"{result.train_seconds / 60:.1f} min (stopped by {result.stopped_by}); weights saved "
        f"as {config.dtype}.",
        "",
        "## What changed",
        "",
        "| model | held-out pref. accuracy | held-out likelihood margin acc. | held-out DPO loss "
        "| train pairs acc. | test bpc |",
        "|---|---|---|---|---|---|",
        _measure_row(f"base `{result.base_version}`", result.before),
        _measure_row(f"tuned `{result.version}`", result.after),
        "",
        "Preference accuracy: the share of held-out pairs the model ranks as people did — for the "
        "base by its log-likelihood margin, for the tuned model by DPO's implicit reward "
        "(log p_tuned - log p_base of the chosen joke minus that of the rejected one). Bits per "
        f"character: {result.bpc_jokes} jokes of `{config.data}/test.jsonl`.",
        "",
        f"Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


__all__ = ["change_lines", "model_card"]
