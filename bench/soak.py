"""Soak test: many users for a long time, Telegram failing at random, the bot restarted midway.

    python -m bench.soak                       # 100 users, 10 minutes, 5% faults, 1 restart
    python -m bench.soak --users 20 --minutes 2 --fault-rate 0.1 --restarts 2 --json out.json

The bot runs as `python -m bot` does (its own `main()`, in a child process) against the local
Bot API server in this process. Only the model is replaced by a fake that answers after
`--model-delay` seconds (`--gpt-model DIR` uses a real GPT folder instead), so the run measures
the bot, not the model. Every call the bot makes fails with probability `--fault-rate` (502,
an nginx HTML page, a dropped connection, 429 with retry_after=1, or a 0.3 s delay), and the bot
is stopped with SIGTERM and started again `--restarts` times while users keep going.

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

Not part of the test run; results go to docs/BENCHMARKS.md ("Soak test").
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

from local_telegram import LocalBotApi  # noqa: E402

TOKEN = "100000:soak-test-token"
WORDS = [
    "Молоко", "Штирлиц", "Вовочка", "Доктор", "Кот", "Программист", "Жена", "Учитель", "Муж",
    "Тёща", "Студент", "Армия", "Бабушка", "Чукча", "Рабинович", "Врач", "Сосед", "Начальник",
    "Экзамен", "Поезд", "Магазин", "Собака", "Директор", "Ёжик", "Колобок", "Пациент", "Рыбак",
]  # fmt: skip
ODD = ["/top", "/stats", "/help", "/frobnicate", "а" * 200, "😂😂", "<b>кот</b>"]
STICKER = {"file_id": "s", "file_unique_id": "s", "type": "regular", "width": 1, "height": 1,
           "is_animated": False, "is_video": False}  # fmt: skip
VOTE_TEXTS = {"Спасибо!", "Оценка снята"}
FAULT_KINDS = ("5xx", "html5xx", "drop", "429", "delay")


# --- the bot child -----------------------------------------------------------------------------


class _FakeModel:
    model_id = "soak-fake"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def warmup(self) -> None:
        pass

    def generate(self, prompts: Any, params: Any, seeds: Any) -> list[str]:
        time.sleep(self.delay)
        return [f"{p} — сказал кот. И ушёл спать." for p in prompts]


def child() -> None:
    """`python -m bot`'s main() with the fake model unless GPT_MODEL is a real folder."""
    import bot.app
    from generation.registry import MethodRegistry

    if os.environ.get("SOAK_FAKE", "1") == "1":
        delay = float(os.environ.get("SOAK_MODEL_DELAY_S", "0.05"))

        def registry(_settings: Any) -> MethodRegistry:
            reg = MethodRegistry()
            reg.add_backend("fake", _FakeModel(delay))
            reg.add_method("gpt", "GPT", "fake", {"do_sample": False})
            reg.add_method("gpt-sample", "GPT (sampling)", "fake", {"do_sample": True})
            return reg

        bot.app.build_registry = registry  # type: ignore[assignment]
    from bot.__main__ import main

    sys.exit(main(["--log-level", os.environ.get("SOAK_LOG_LEVEL", "INFO")]))


class BotProcess:
    """The bot child: start, SIGTERM, RSS."""

    def __init__(self, api: LocalBotApi, workdir: Path, args: argparse.Namespace) -> None:
        self.api = api
        self.workdir = workdir
        self.args = args
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_codes: list[int] = []
        self.stop_seconds: list[float] = []
        self.starts = 0
        self.rss: list[dict[str, Any]] = []  # per process: MB after start, before stop, peak

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "DATABASE_"))}
        env.update(
            BOT_TOKEN=TOKEN,
            TELEGRAM_API_URL=self.api.url,
            DATABASE_URL=f"sqlite+aiosqlite:///{self.workdir / 'jokes.db'}",
            ENABLE_DIFFUSEQ="false",
            SHUTDOWN_GRACE_S="10",
            PYTHONPATH=str(ROOT),
            SOAK_MODEL_DELAY_S=str(self.args.model_delay),
            SOAK_FAKE="0" if self.args.gpt_model else "1",
        )
        if self.args.gpt_model:
            env["GPT_MODEL"] = str(self.args.gpt_model)
        return env

    async def start(self) -> None:
        log = (self.workdir / "bot.log").open("a")
        polls = len(self.api.calls_of("getUpdates"))
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import bench.soak as s; s.child()",
            cwd=ROOT, env=self.env(), stdout=log, stderr=log,
        )  # fmt: skip
        log.close()
        self.starts += 1
        deadline = time.monotonic() + 180
        while len(self.api.calls_of("getUpdates")) <= polls and self.api._waiting_polls == 0:
            if self.proc.returncode is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start; see {self.workdir / 'bot.log'}")
            await asyncio.sleep(0.1)
        self.rss.append({"start": self.rss_mb(), "samples": []})

    async def sample_rss(self, every: float = 15.0) -> None:
        """RSS of the running process every `every` seconds (to see a trend, not just ends)."""
        while True:
            await asyncio.sleep(every)
            if self.rss and (mb := self.rss_mb()) is not None:
                self.rss[-1]["samples"].append(mb)

    async def stop(self) -> None:
        assert self.proc is not None
        if self.rss:
            self.rss[-1].update(end=self.rss_mb(), peak=self.rss_mb("VmHWM"))
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), 60)
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        self.stop_seconds.append(round(time.monotonic() - began, 2))
        self.exit_codes.append(code)

    def rss_mb(self, key: str = "VmRSS") -> float | None:
        if self.proc is None or self.proc.returncode is not None:
            return None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
        return None


# --- the users ---------------------------------------------------------------------------------


@dataclass
class Press:
    user: int
    message_id: int
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
                    current = api.message(uid, reply.message_id).button_texts
                    index = rng.choice((0, 1))
                    query = api.press_button(uid, reply.message_id, text=current[index])
                    press = Press(uid, reply.message_id, 1 if index == 0 else -1, query)
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
        by_pair.setdefault((press.user, press.message_id), []).append(press)
    with contextlib.closing(sqlite3.connect(db)) as con:
        stored = {
            (user, message): value
            for user, message, value in con.execute(
                "SELECT v.user_id, j.message_id, v.value FROM votes v "
                "JOIN jokes j ON j.id = v.joke_id WHERE j.chat_id = v.user_id"
            )
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
    rng = random.Random(args.seed)
    tally = Tally()
    async with LocalBotApi(token=TOKEN, callback_timeout_s=30) as api:
        bot = BotProcess(api, workdir, args)
        await bot.start()
        sampler = asyncio.create_task(bot.sample_rss())
        api.faults.random(args.fault_rate, FAULT_KINDS, seed=args.seed, delay=0.3)
        began = time.monotonic()
        until = began + duration
        users = [
            asyncio.create_task(
                user(api, 10_000 + n, until, random.Random(rng.random()), tally, args.think)
            )
            for n in range(args.users)
        ]
        for k in range(args.restarts):  # evenly spaced restarts while users go on
            at = began + duration * (k + 1) / (args.restarts + 1)
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            await bot.stop()
            await bot.start()
        await asyncio.gather(*users)
        elapsed = time.monotonic() - began
        api.faults.clear()
        deadline = time.monotonic() + 120
        while not api.all_updates_answered and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # handlers finishing
        await bot.stop()
        sampler.cancel()
        updates = len(api.updates)
        unconfirmed = len(api.pending_updates())
        injected = Counter(f.fault.kind for f in api.faults.injected)
        calls = len(api.calls)
    log = (workdir / "bot.log").read_text(errors="replace")
    report = {
        "users": args.users,
        "seconds_planned": round(duration),
        "seconds_run": round(elapsed),  # users finish the action they are in
        "fault_rate": args.fault_rate,
        "restarts": args.restarts,
        "updates": updates,
        "api_calls": calls,
        "faults_injected": dict(injected),
        "words_sent": tally.words,
        "replies": dict(tally.replies),
        "more_presses": tally.more,
        "vote_presses": len(tally.presses),
        "vote_answers": dict(Counter(p.answer or "(none)" for p in tally.presses)),
        "votes": check_votes(workdir / "jokes.db", tally.presses),
        "unanswered": check_answers(api, tally),
        "updates_unconfirmed_at_end": unconfirmed,
        "exit_codes": bot.exit_codes,
        "stop_seconds": bot.stop_seconds,
        "rss_mb_per_process": bot.rss,
        "log_handler_errors": log.count(" ERROR bot.errors:"),
        "log_polling_errors": log.count("Failed to fetch updates"),
        "log_skipped_updates": log.count("skipping update"),
        "workdir": str(workdir),
    }
    report["ok"] = (
        not any(k.startswith("MISMATCH") for k in report["votes"])
        and not any("NO ATTEMPT" in k for k in report["unanswered"])
        and unconfirmed == 0
        and all(code == 0 for code in bot.exit_codes)
    )
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=0.0, help="overrides --minutes")
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--think", type=float, default=4.0, help="mean pause between actions, s")
    parser.add_argument("--model-delay", type=float, default=0.05, help="fake model, s per batch")
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
