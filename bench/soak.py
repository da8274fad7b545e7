"""Soak test: many users for a long time, Telegram failing at random, the bot restarted midway.

    python -m bench.soak                       # 100 users, 10 minutes, 5% faults, 1 restart
    python -m bench.soak --users 20 --minutes 2 --fault-rate 0.1 --restarts 2 --json out.json

The bot runs as `python -m bot` does (its own `main()`, in a child process) against the local
Bot API server in this process. Only the model is replaced by a fake that answers after
`--model-delay` seconds (`--gpt-model DIR` uses a real GPT folder instead), so the run measures
the bot, not the model; `--slow-rate` of its calls compute in torch for `--slow-s` seconds,
past the joke's timeout. Every call the bot makes fails with probability `--fault-rate` (502,
an nginx HTML page, a dropped connection, 429 with retry_after=1, a 0.3 s delay, or a lost
answer: the call is carried out and answered 502, so a sent message may arrive twice), and the
bot is stopped with SIGTERM and started again `--restarts` times while users keep going.

Each simulated user, until the time is up: sends a word (now and then a command, a sticker or a
too-long text), waits for the reply; under a joke presses 👍 or 👎 (sometimes a second time:
switch or take back) and waits for the answer; sometimes presses 🔁; thinks for a few seconds.

Checked at the end (after faults are switched off, the bot has gone idle and has been stopped):

* every acknowledged vote is in the database: for every (user, joke) whose presses were all
  answered, the stored vote equals what the last answer said ("Спасибо!" for the pressed value,
  "Оценка снята" for none). Pairs with an unanswered press are left out (the vote may or may not
  have been stored: its answer was lost) and counted;
* every update was answered or deliberately ignored: every update was confirmed by the bot;
  every word got a reply, every press an answer, or else the bot's attempt to answer was failed
  by an injected fault (counted separately; "no attempt" must be 0);
* every stop exited 0. Reported too: the bot process's RSS after each start, every 15 s, before
  each stop, and its peak.

Not part of the test run; results: docs/BENCHMARKS.md ("Soak test"). The bot child and its
fake model: `bench.soak_bot`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bench_parser  # noqa: E402
from bench.soak_bot import TOKEN, BotProcess  # noqa: E402
from local_telegram import LocalBotApi  # noqa: E402

WORDS = [
    "Молоко", "Штирлиц", "Вовочка", "Доктор", "Кот", "Программист", "Жена", "Учитель", "Муж",
    "Тёща", "Студент", "Армия", "Бабушка", "Чукча", "Рабинович", "Врач", "Сосед", "Начальник",
    "Экзамен", "Поезд", "Магазин", "Собака", "Директор", "Ёжик", "Колобок", "Пациент", "Рыбак",
]  # fmt: skip
ODD = ["/top", "/stats", "/help", "/frobnicate", "а" * 200, "😂😂", "<b>кот</b>"]
STICKER = {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
           "is_animated": False, "is_video": False}  # fmt: skip
VOTE_TEXTS = {"Спасибо!", "Оценка снята"}
FAULT_KINDS = ("5xx", "html5xx", "drop", "429", "delay", "lost")


# --- the users ---------------------------------------------------------------------------------


@dataclass
class Press:
    user: int
    joke_id: int  # from the button's data: a joke sent twice has two messages and one id
    value: int
    query_id: str
    answer: str | None = None


@dataclass
class Tally:
    words: int = 0
    replies: Counter[str] = field(default_factory=Counter)
    unanswered_words: list[tuple[int, int, float]] = field(default_factory=list)
    presses: list[Press] = field(default_factory=list)
    more: int = 0


def reply_kind(text: str, has_votes: bool) -> str:
    if has_votes:
        return "joke"
    for marker, kind in (
        ("Извини", "apology (model)"), ("перезапуска", "apology (restart)"),
        ("Что-то пошло не так", "apology (error)"), ("много желающих", "busy"),
        ("Не так быстро", "throttled"), ("Уже пишу", "throttled"),
    ):  # fmt: skip
        if marker in text:
            return kind
    return "other reply"


async def wait_reply(api: LocalBotApi, chat_id: int, floor: int, timeout: float) -> Any:
    """The first bot message after `floor` in a chat, polled (cheap with 100 waiting users)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chat = api.chats.get(chat_id)
        if chat is not None:
            found = None
            for message in reversed(chat.messages.values()):
                if message.message_id <= floor:
                    break
                if message.from_bot:
                    found = message
            if found is not None:
                return found
        await asyncio.sleep(0.1)
    return None


async def wait_answer(api: LocalBotApi, query_id: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.callback_answer(query_id)
        if answer is not None:
            return answer.text or ""
        await asyncio.sleep(0.1)
    return None


async def user(
    api: LocalBotApi, uid: int, until: float, rng: random.Random, tally: Tally, think: float
) -> None:
    await asyncio.sleep(rng.uniform(0, think))
    while time.monotonic() < until:
        roll = rng.random()
        if roll < 0.05:
            sent = api.send_message(uid, sticker=STICKER)
        else:
            text = rng.choice(ODD) if roll < 0.15 else rng.choice(WORDS)
            sent = api.send_text(uid, text)
        tally.words += 1
        reply = await wait_reply(api, uid, sent.message_id, 60)
        if reply is None:
            tally.unanswered_words.append((uid, sent.message_id, time.monotonic()))
        else:
            votes = any(t.startswith("👍") for t in reply.button_texts)
            tally.replies[reply_kind(reply.text or "", votes)] += 1
            if votes and rng.random() < 0.8:
                for _ in range(2 if rng.random() < 0.3 else 1):  # sometimes switch / take back
                    shown = api.message(uid, reply.message_id)
                    index = rng.choice((0, 1))
                    query = api.press_button(uid, reply.message_id, text=shown.button_texts[index])
                    joke_id = int(shown.callback_data[index].split(":")[1])
                    press = Press(uid, joke_id, 1 if index == 0 else -1, query)
                    tally.presses.append(press)
                    press.answer = await wait_answer(api, query, 40)
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
            if votes and rng.random() < 0.1:
                api.press_button(uid, reply.message_id, text="🔁 Ещё")
                tally.more += 1
                await wait_reply(api, uid, reply.message_id, 60)
        await asyncio.sleep(rng.uniform(think / 2, think * 1.5))


# --- checks ------------------------------------------------------------------------------------


def check_votes(db: Path, presses: list[Press]) -> dict[str, int]:
    """Compare the last acknowledged state of every (user, joke) with the stored vote."""
    by_pair: dict[tuple[int, int], list[Press]] = {}
    for press in presses:
        by_pair.setdefault((press.user, press.joke_id), []).append(press)
    with contextlib.closing(sqlite3.connect(db)) as con:
        stored = {
            (user, joke): value
            for user, joke, value in con.execute("SELECT user_id, joke_id, value FROM votes")
        }
    result = Counter[str]()
    for pair, items in by_pair.items():
        if any(p.answer not in VOTE_TEXTS for p in items):
            result["pairs with an unanswered press (skipped)"] += 1
            continue
        last = items[-1]
        expected = last.value if last.answer == "Спасибо!" else None
        result["pairs checked"] += 1
        if stored.get(pair) != expected:
            result["MISMATCH: acknowledged vote not as stored"] += 1
    return dict(result)


def check_answers(api: LocalBotApi, tally: Tally) -> dict[str, int]:
    """Unanswered words and presses: did the bot at least try (an injected fault ate it)?"""
    faulted_answers = {
        str(c.params.get("callback_query_id")) for c in api.calls_of("answerCallbackQuery")
        if c.fault is not None
    }  # fmt: skip
    faulted_sends = {
        int(c.params.get("chat_id") or 0) for c in api.calls_of("sendMessage") if c.fault
    }
    result = Counter[str]()
    for press in tally.presses:
        if press.answer is None:
            faulted = press.query_id in faulted_answers
            result[
                "press unanswered: a fault ate the answer"
                if faulted
                else "PRESS UNANSWERED, NO ATTEMPT"
            ] += 1
    for uid, _message, _at in tally.unanswered_words:
        result[
            "word unanswered: a fault ate the reply"
            if uid in faulted_sends
            else "WORD UNANSWERED, NO ATTEMPT"
        ] += 1
    return dict(result)


# --- main --------------------------------------------------------------------------------------


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    duration = args.seconds if args.seconds else args.minutes * 60
    tally = Tally()
    async with LocalBotApi(token=TOKEN, callback_timeout_s=30) as api:
        bot = BotProcess(api, workdir, args)
        await bot.start()
        sampler = asyncio.create_task(bot.sample_rss())
        api.faults.random(args.fault_rate, FAULT_KINDS, seed=args.seed, delay=0.3)
        elapsed = await run_users(api, bot, args, tally, duration)
        api.faults.clear()
        deadline = time.monotonic() + 120
        while not api.all_updates_answered and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # handlers finishing
        await bot.stop()
        sampler.cancel()
        counts = {
            "updates": len(api.updates),
            "api_calls": len(api.calls),
            "faults_injected": dict(
            Counter("lost" if f.fault.after else f.fault.kind for f in api.faults.injected)
        ),
        }
        unconfirmed = len(api.pending_updates())
    report = {
        "users": args.users,
        "seconds_planned": round(duration),
        "seconds_run": round(elapsed),  # users finish the action they are in
        "fault_rate": args.fault_rate,
        "restarts": args.restarts,
        **counts,
        **tally_report(api, tally, workdir / "jokes.db"),
        "updates_unconfirmed_at_end": unconfirmed,
        "exit_codes": bot.exit_codes,
        "stop_seconds": bot.stop_seconds,
        "rss_mb_per_process": bot.rss,
        **log_counts((workdir / "bot.log").read_text(errors="replace")),
        "workdir": str(workdir),
    }
    report["ok"] = (
        not any(k.startswith("MISMATCH") for k in report["votes"])
        and not any("NO ATTEMPT" in k for k in report["unanswered"])
        and unconfirmed == 0
        and all(code == 0 for code in bot.exit_codes)
    )
    return report


async def run_users(
    api: LocalBotApi, bot: BotProcess, args: argparse.Namespace, tally: Tally, duration: float
) -> float:
    """The users until the time is up, the bot restarted `--restarts` times, evenly spaced, while
    they go on; returns the seconds it took (users finish the action they are in)."""
    rng = random.Random(args.seed)
    began = time.monotonic()
    until = began + duration
    users = [
        asyncio.create_task(
            user(api, 10_000 + n, until, random.Random(rng.random()), tally, args.think)
        )
        for n in range(args.users)
    ]
    for k in range(args.restarts):
        at = began + duration * (k + 1) / (args.restarts + 1)
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        await bot.stop()
        await bot.start()
    await asyncio.gather(*users)
    return time.monotonic() - began


def tally_report(api: LocalBotApi, tally: Tally, db: Path) -> dict[str, Any]:
    """What the users did and saw, and the checks of votes and answers."""
    return {
        "words_sent": tally.words,
        "replies": dict(tally.replies),
        "more_presses": tally.more,
        "vote_presses": len(tally.presses),
        "vote_answers": dict(Counter(p.answer or "(none)" for p in tally.presses)),
        "votes": check_votes(db, tally.presses),
        "unanswered": check_answers(api, tally),
    }


def log_counts(log: str) -> dict[str, int]:
    return {
        "log_lines": log.count("\n"),
        "log_tracebacks": log.count("Traceback (most recent call last)"),
        "log_aborts": log.count("terminate called"),
        "log_handler_errors": log.count(" ERROR bot.errors:"),
        "log_polling_errors": log.count("Failed to fetch updates"),
        "log_skipped_updates": log.count("skipping update"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("bench.soak", __doc__)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=0.0, help="overrides --minutes")
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--think", type=float, default=4.0, help="mean pause between actions, s")
    parser.add_argument("--model-delay", type=float, default=0.05, help="fake model, s per batch")
    parser.add_argument(
        "--slow-rate", type=float, default=0.002, help="share of fake-model calls that run slow"
    )
    parser.add_argument(
        "--slow-s", type=float, default=15.0, help="a slow call's seconds (past the timeout)"
    )
    parser.add_argument("--timeout", type=float, default=8.0, help="GENERATION_TIMEOUT_S, s")
    parser.add_argument("--gpt-model", type=Path, help="use this GPT folder instead of the fake")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", help="database and bot.log go here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    report = asyncio.run(soak(args))
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
