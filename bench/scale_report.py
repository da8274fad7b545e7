"""The report of `bench.scale`: a table per phase (before the kill, from the kill to the end, the
whole run), the checks, the replicas' starts and the load, and a one-line summary."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from bench.common import percentile, table
from bench.scale_checks import (
    answer_seconds,
    check_answers,
    check_once,
    check_votes,
    failures,
    stored_jokes,
)
from bench.scale_users import Ask, Tally

if TYPE_CHECKING:
    from local_telegram import LocalBotApi

#: what bot/update_journal.py logs for each update it takes over from a dead replica
TAKEN_OVER = "taking over update:"
HEADER = [
    "phase", "seconds", "words + 🔁", "jokes", "jokes/s", "joke p50 s", "joke p95 s",
    "answer p50 s", "answer p95 s", "apologies with 🔁", "busy", "уже пишу… / не так быстро",
    "no reply",
]  # fmt: skip


def phase_row(name: str, asks: list[Ask], seconds: float) -> list[Any]:
    kinds = Counter(a.kind or "no reply" for a in asks)
    jokes = [s for a in asks if a.kind == "joke" and (s := a.seconds) is not None]
    answers = answer_seconds(asks)
    return [
        name, round(seconds), len(asks), len(jokes), len(jokes) / max(seconds, 1e-9),
        percentile(jokes, 50), percentile(jokes, 95), percentile(answers, 50),
        percentile(answers, 95), kinds["apology with 🔁"], kinds["busy"],
        kinds["уже пишу…"] + kinds["не так быстро"], kinds["no reply"],
    ]  # fmt: skip


def phases(tally: Tally, run: dict[str, Any]) -> list[list[Any]]:
    began, ended, killed = run["began"], run["ended"], run["killed_at"]
    rows = []
    if killed is not None:
        before = [a for a in tally.asks if a.sent_at < killed]
        after = [a for a in tally.asks if a.sent_at >= killed]
        rows.append(phase_row("before the kill", before, killed - began))
        rows.append(phase_row("kill → end (restart included)", after, ended - killed))
    rows.append(phase_row("whole run", tally.asks, ended - began))
    return rows


# long: one report, one place; each part is a line or two
def report(
    args: Any, api: LocalBotApi, database_url: str, tally: Tally, run: dict[str, Any], cluster: Any
) -> dict[str, Any]:
    votes = check_votes(database_url, tally.presses)
    once = check_once(api, database_url, tally)
    answers = check_answers(tally, run["killed_at"])
    jokes = stored_jokes(database_url)
    failed = failures(votes, once, answers)
    rows = phases(tally, run)
    replicas = {
        r.name: {"starts": r.starts, "kills": r.kills, "ready_s": r.ready_s}
        for r in [*cluster.bots, *cluster.generation]
    }
    for bot in cluster.bots:  # updates of a killed replica that this one handled (its log says)
        log = bot.log.read_text(errors="replace") if bot.log.exists() else ""
        replicas[bot.name]["updates taken over"] = log.count(TAKEN_OVER)
    proxy = dict(cluster.proxy.counts) if cluster.proxy is not None else {}
    loads = run["loads"] or [float("nan")]
    kinds = Counter(a.kind or "no reply" for a in tally.asks)
    checks = {**votes, **once, **answers, **jokes}
    lines = [
        table(HEADER, rows),
        "",
        table(["check", "value"], [[k, v] for k, v in checks.items()]),
        "",
        f"Replies: {dict(kinds)}. Vote answers: "
        f"{dict(Counter(p.answer or '(none)' for p in tally.presses))}.",
        f"Replicas: {replicas}. Proxy: {proxy}.",
        f"Load average (1 min) during the run: mean {sum(loads) / len(loads):.2f}, "
        f"max {max(loads):.2f}; at the end: {run['uptime_end']}.",
        "",
        summary(args, rows[-1], votes, answers, kinds, failed),
    ]
    return {
        "markdown": "\n".join(lines),
        "ok": not failed,
        "failures": failed,
        "phases": [dict(zip(HEADER, row, strict=True)) for row in rows],
        "checks": checks,
        "replies": dict(kinds),
        "replicas": replicas,
        "proxy": proxy,
        "loads": run["loads"],
        "no reply": [
            {"user": a.user, "at_s": round(a.sent_at - run["began"], 1), "more": a.more}
            for a in tally.asks
            if a.kind is None
        ],
    }


def summary(
    args: Any,
    whole: list[Any],
    votes: dict[str, int],
    answers: dict[str, Any],
    kinds: Counter[str],
    failed: list[str],
) -> str:
    kill = " with a bot and a generation replica SIGKILLed and restarted" if args.kill else ""
    return (
        f"**{'ok' if not failed else 'FAILED'}**: {answers['users']} users{kill}, {whole[1]} s: "
        f"{whole[3]} jokes ({whole[4]:.2f}/s), joke p50 {whole[5]:.1f} s, p95 {whole[6]:.1f} s; "
        f"votes thanked {votes.get('votes thanked', 0)} = stored "
        f"{votes.get('of them stored', 0)} (0 lost, 0 applied twice is the check); "
        f"{kinds['apology with 🔁']} apologies with 🔁, {kinds['busy']} busy, "
        f"{answers['USERS WITHOUT AN ANSWER']} users without an answer"
        + (f"; failed: {'; '.join(failed)}" if failed else "")
        + "."
    )
