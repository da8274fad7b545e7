"""The whole bot under load: simulated users through the local Bot API server.

    python -m bench.bot [--quick] [--users 1,10,100] [--rounds R] [--method gpt] [--threads T]

The bot runs as in production, in its own process (`bench.bot_process`: `create_app(Settings())`
plus an event-loop heartbeat), against the local Bot API server in this process, over HTTP, with
the shipped models and a fresh SQLite database. For each N, N users start within a second; each
sends a starting word, waits for the joke, thinks for about a second (the bot's rate limit is one
request per second), presses 👍, waits for the answer, thinks again, and so on for R rounds.

Reported per N: update-to-reply latency of the jokes (the user's message reaching the server to
the bot's reply reaching it) and of the votes (button press to the callback answer), jokes per
second over the phase, the event loop's longest stall during the phase (heartbeat lag), and the
checks: every update confirmed by the bot, every message answered with a joke, every 👍 stored.
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import WORDS, command_line, machine, percentile, print_heading, table
from settings import ROOT

TOKEN = "100000:bench-token"


def bot_env(api_url: str, db: Path, args: argparse.Namespace, extra: dict[str, str]) -> dict:
    env = {
        **os.environ,
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "TORCH_THREADS": str(args.threads),
        "POLLING_TIMEOUT_S": "10",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONWARNINGS": "ignore",
        **extra,
    }
    if args.method:
        env["DEFAULT_METHOD"] = args.method
    for item in getattr(args, "set", None) or []:
        key, _, value = item.partition("=")
        env[key.upper()] = value
    return env


async def start_bot(
    api: Any, env: dict[str, str], out: Path
) -> tuple[subprocess.Popen[bytes], float]:
    """Start the bot process; return it and the wall time it was started at."""
    started = time.time()
    # stderr to a file, never a pipe nobody reads: a full pipe would block the bot's logging
    with open(out.with_suffix(".log"), "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bot_process", str(out)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    return proc, started


async def stop_bot(proc: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    proc.send_signal(signal.SIGTERM)
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.run_in_executor(None, proc.wait), 120)
    except TimeoutError:
        proc.kill()
        raise
    log = out.with_suffix(".log")
    stderr = log.read_text(errors="replace") if log.is_file() else ""
    if not out.is_file():
        raise RuntimeError(f"the bot process left no report; its stderr:\n{stderr[-3000:]}")
    return json.loads(out.read_text())


async def user_session(
    api: Any, uid: int, rounds: int, rng: random.Random, stats: dict[str, Any]
) -> None:
    await asyncio.sleep(rng.uniform(0, 1.0))
    for r in range(rounds):
        word = WORDS[(uid + r * 7) % len(WORDS)]
        sent = api.send_text(uid, word)
        stats["messages"] += 1
        try:
            reply = await api.wait_for_bot_message(uid, after=sent.message_id, timeout=300)
        except TimeoutError:
            stats["no_reply"] += 1
            continue
        like = next((t for t in reply.button_texts if t.startswith("👍")), None)
        # users read every reply before writing again: the bot answers a flood only once
        await asyncio.sleep(rng.uniform(1.0, 1.3))
        if like is None or not (reply.text or "").startswith(word):
            stats["not_joke"].append((reply.text or "")[:80])
            continue
        stats["joke_latency"].append(reply.at - sent.at)
        stats["jokes"] += 1
        pressed_at = time.monotonic()
        query = api.press_button(uid, reply.message_id, text=like)
        stats["votes"] += 1
        try:
            answer = await api.wait_for_callback_answer(query, timeout=120)
            stats["vote_latency"].append(answer.at - pressed_at)
            if answer.text != "Спасибо!":
                stats["vote_not_thanked"] += 1
        except TimeoutError:
            stats["vote_unanswered"] += 1
        await asyncio.sleep(rng.uniform(0.2, 0.5))


def new_stats() -> dict[str, Any]:
    return {
        "messages": 0,
        "jokes": 0,
        "votes": 0,
        "no_reply": 0,
        "vote_unanswered": 0,
        "vote_not_thanked": 0,
        "not_joke": [],
        "joke_latency": [],
        "vote_latency": [],
    }


def count(db: Path, sql: str) -> int:
    with contextlib.closing(sqlite3.connect(db)) as con:
        return int(con.execute(sql).fetchone()[0])


Phase = tuple[int, float, float, dict[str, Any]]  # users, wall-clock start and end, stats


async def bench(args: argparse.Namespace) -> tuple[list[list[Any]], dict[str, Any]]:
    from local_telegram import LocalBotApi

    api = LocalBotApi(token=TOKEN, callback_timeout_s=600)
    await api.start()
    extra: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bot-") as tmp:
            db = Path(tmp) / "jokes.db"
            out = Path(tmp) / "bot.json"
            proc, started = await start_bot(api, bot_env(api.url, db, args, {}), out)
            try:
                # the last call before polling; the server records a call when it has answered
                # it, and the first getUpdates is a long poll (POLLING_TIMEOUT_S) on an empty queue
                await api.wait_for_call("setMyCommands", timeout=600)
                extra["ready_s"] = time.time() - started
                phases = await run_phases(api, args)
                all_answered = api.all_updates_answered
            finally:
                report = await stop_bot(proc, out)
            stored_votes = count(db, "SELECT COUNT(*) FROM votes")
            stored_jokes = count(db, "SELECT COUNT(*) FROM jokes")
    finally:
        await api.stop()
    rows, votes_thanked = phase_rows(phases, report, extra)
    extra.update(
        all_updates_confirmed=all_answered,
        votes_thanked=votes_thanked,
        votes_in_db=stored_votes,
        jokes_in_db=stored_jokes,
        rss_ready_mb=report["rss_ready_mb"],
        peak_rss_mb=report["peak_rss_mb"],
        max_lag_ms_overall=max((lag for _, lag in report["lags"]), default=0.0) * 1000,
    )
    return rows, extra


async def run_phases(api: Any, args: argparse.Namespace) -> list[Phase]:
    """For each N of `--users`: N users at once, until every update is answered."""
    phases: list[Phase] = []
    for index, users in enumerate(int(n) for n in args.users.split(",")):
        stats = new_stats()
        rng = random.Random(index)
        base = 10_000 * (index + 1)
        t0 = time.time()
        await asyncio.gather(
            *(user_session(api, base + u, args.rounds, rng, stats) for u in range(users))
        )
        await api.wait_all_updates_answered(timeout=300)
        t1 = time.time()
        phases.append((users, t0, t1, stats))
        print(f"[bot] {users} users done in {t1 - t0:.1f} s", file=sys.stderr)
    return phases


def phase_rows(
    phases: list[Phase], report: dict[str, Any], extra: dict[str, Any]
) -> tuple[list[list[Any]], int]:
    """The table's rows and the votes answered over all phases; a few non-jokes go to `extra`."""
    rows: list[list[Any]] = []
    total_votes = 0
    for users, t0, t1, stats in phases:
        lags = [lag for at, lag in report["lags"] if t0 <= at <= t1]
        total_votes += stats["votes"] - stats["vote_unanswered"]
        rows.append(
            [
                users,
                stats["messages"],
                stats["jokes"] / max(1e-9, t1 - t0 - 0.0),
                percentile(stats["joke_latency"], 50),
                percentile(stats["joke_latency"], 95),
                percentile(stats["vote_latency"], 50),
                percentile(stats["vote_latency"], 95),
                max(lags, default=0.0) * 1000,
                len(stats["not_joke"]),
                stats["no_reply"],
                f"{stats['votes'] - stats['vote_unanswered'] - stats['vote_not_thanked']}"
                f"/{stats['votes']}",
            ]
        )
        if stats["not_joke"]:
            extra.setdefault("not_jokes", []).extend(stats["not_joke"][:5])
    return rows, total_votes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bot", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 round per user")
    parser.add_argument("--users", default="1,10,100")
    parser.add_argument(
        "--rounds", type=int, default=0, help="rounds per user (default 3; 1 quick)"
    )
    parser.add_argument(
        "--method", default="", help="DEFAULT_METHOD for the bot (default: its own)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="a bot setting, e.g. QUEUE_DEPTH=256"
    )
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    info = machine()
    rows, extra = asyncio.run(bench(args))
    print_heading(command_line("bench.bot", argv), info, args.threads)
    print(
        f"\nBot: shipped models, method {args.method or 'the default'}, {args.rounds} round(s) per "
        f"user, settings {args.set or 'default'}; ready {extra['ready_s']:.1f} s after start; "
        f"RSS {extra['rss_ready_mb']:.0f} MB ready, {extra['peak_rss_mb']:.0f} MB peak.\n"
    )
    header = [
        "users", "messages", "jokes/s", "joke p50 s", "joke p95 s", "vote p50 s", "vote p95 s",
        "max loop lag ms", "other replies", "no reply", "votes thanked",
    ]  # fmt: skip
    print(table(header, rows))
    ok = extra["votes_in_db"] == extra["votes_thanked"]
    print(
        f"\nChecks: every update confirmed by the bot: {extra['all_updates_confirmed']}; "
        f"jokes in the database: {extra['jokes_in_db']}; votes thanked {extra['votes_thanked']}, "
        f"stored {extra['votes_in_db']} ({'all stored' if ok else 'MISMATCH'}); longest loop "
        f"stall over the whole run {extra['max_lag_ms_overall']:.0f} ms."
    )
    if extra.get("not_jokes"):
        print(
            f"Other replies (first few; e.g. 'busy' when the queue is full): {extra['not_jokes']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
