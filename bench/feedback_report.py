"""Figures and the markdown report of `bench.feedback_loop`: the arms' like ratios with their
95% Wilson intervals, read from the bot's database by storage.experiments' own functions (the
figures `/stats` shows), and the tuning run's figures."""

from __future__ import annotations

from typing import Any

from storage.stats import wilson_interval


def ratio(likes: int, votes: int) -> dict[str, Any]:
    low, high = wilson_interval(likes, votes)
    share = likes / votes if votes else None
    return {"likes": likes, "votes": votes, "ratio": share, "low": low, "high": high}


async def arm_figures(database_url: str, method: str) -> dict[str, Any]:
    """Each arm's jokes, votes, like ratio and interval; the verdict; whether B won clearly
    (B's lower bound above A's upper bound)."""
    import storage
    from storage.experiments import arm_stats, compare_arms

    engine = storage.create_engine(database_url)
    try:
        async with storage.make_sessionmaker(engine)() as session:
            arms = await arm_stats(session, method, {"A": None, "B": None})
    finally:
        await engine.dispose()
    verdict = compare_arms(arms["A"], arms["B"])
    out: dict[str, Any] = {}
    for arm, stats in arms.items():
        out[arm] = ratio(stats.likes, stats.votes) | {"jokes": stats.jokes}
    a, b = out["A"], out["B"]
    out["leader"], out["overlap"] = verdict.leader, verdict.overlap
    out["b_wins"] = bool(b["votes"] and a["votes"] and b["low"] > a["high"])
    return out


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _row(name: str, figures: dict[str, Any]) -> str:
    interval = f"{_pct(figures['low'])} – {_pct(figures['high'])}"
    share = _pct(figures["ratio"])
    return f"| {name} | {figures['votes']} | {figures['likes']} | {share} | {interval} |"


def _measure(figures: dict[str, Any] | None, key: str, digits: int = 3) -> str:
    value = None if figures is None else figures.get(key)
    return "–" if value is None else f"{value:.{digits}f}"


def tune_table(tune: dict[str, Any]) -> list[str]:
    before, after = tune.get("before"), tune.get("after")
    rows = [
        "| | base | tuned |",
        "|---|---|---|",
        f"| held-out preference accuracy | {_measure(before, 'heldout_accuracy')} "
        f"(likelihood margin) | {_measure(after, 'heldout_accuracy')} (DPO reward) |",
        f"| held-out accuracy by likelihood | {_measure(before, 'heldout_likelihood_accuracy')} "
        f"| {_measure(after, 'heldout_likelihood_accuracy')} |",
        f"| bits per character ({tune.get('bpc_jokes')} test jokes) "
        f"| {_measure(before, 'bpc', 4)} | {_measure(after, 'bpc', 4)} |",
    ]
    return rows


def markdown(report: dict[str, Any]) -> str:
    arms, tune, phase_a = report["arms"], report["tune"], report["phase_a"]
    head = "| | votes | 👍 | like ratio | 95% Wilson interval |\n|---|---|---|---|---|"
    verdict = (
        "B wins: its lower bound is above A's upper bound"
        if arms["b_wins"]
        else f"B does not win clearly (leader: {arms['leader']}, intervals overlap: "
        f"{arms['overlap']})"
    )
    exported = report["export"]
    lines = [
        f"`{report['command']}`",
        "",
        report["machine"] + f" Whole run: {report['minutes']} min.",
        "",
        head,
        _row("phase A (shipped model, before tuning)", phase_a["ratio"]),
        _row("phase B, arm A (shipped model)", arms["A"]),
        _row("phase B, arm B (tuned GPT + its judge)", arms["B"]),
        "",
        f"Verdict: {verdict}.",
        "",
        f"Export: the bot's /export held {exported['bot_count']} rated jokes "
        f"({exported['bot_lines']} lines sent, cut short: {exported['bot_truncated']}); "
        f"ratings file: {exported['file_lines']} lines.",
        f"Tuning: {tune['train_pairs']} training pairs, {tune['heldout_pairs']} held out "
        f"({tune['pairs']}), {tune['steps']} steps in {tune['train_seconds']} s; "
        f"judge {tune['judge_version']}.",
        "",
        *tune_table(tune),
        "",
        f"Throughput: phase A {phase_a['jokes_per_s']} jokes/s, phase B "
        f"{report['phase_b']['jokes_per_s']} jokes/s.",
    ]
    return "\n".join(lines)


__all__ = ["arm_figures", "markdown", "ratio", "tune_table"]
