"""The simulated users of `bench.scale`: they write words to the bot through the local Bot API
server, wait for the reply, press 👍/👎 under a joke (sometimes a second time: switch or take
back) and now and then 🔁, then think a few seconds. A word left unanswered is written again
after the wait, as a person would.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.common import WORDS
from bench.soak import Press, wait_answer, wait_reply
from bot import texts
from local_telegram import LocalBotApi

ANSWER_KINDS = ("joke", "apology with 🔁", "busy")  # an answer to the word, of some kind
#: After a refusal ("уже пишу…", "не так быстро": the bot warns once a burst, then is silent) or
#: silence, a person writes again sooner than they would wait for a joke.
REFUSED_PATIENCE_S = 10.0


@dataclass
class Ask:
    """A word (or a 🔁 press) and the bot's reply to it."""

    user: int
    sent_at: float
    more: bool = False  # a 🔁 press under a joke, not a word
    kind: str | None = None  # None: no reply within the wait
    replied_at: float | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.replied_at is None else self.replied_at - self.sent_at


@dataclass
class Tally:
    asks: list[Ask] = field(default_factory=list)
    presses: list[Press] = field(default_factory=list)


def reply_kind(text: str, buttons: list[str]) -> str:
    if any(b.startswith("👍") for b in buttons):
        return "joke"
    if text == texts.BUSY:
        return "busy"
    if any(b.startswith("🔁") for b in buttons):
        return "apology with 🔁"
    for known, kind in (
        (texts.ALREADY_WRITING, "уже пишу…"),
        (texts.TOO_FAST, "не так быстро"),
        (texts.RESTARTING, "apology: restarting"),
    ):
        if text == known:
            return kind
    return "other"


async def ask(api: LocalBotApi, ask_: Ask, floor: int, tally: Tally, timeout: float) -> object:
    """Wait for the bot's first message after `floor`; note what and when."""
    tally.asks.append(ask_)
    reply = await wait_reply(api, ask_.user, floor, timeout)
    if reply is not None:
        ask_.kind = reply_kind(reply.text or "", reply.button_texts)
        ask_.replied_at = reply.at
    return reply


async def vote(
    api: LocalBotApi, uid: int, message_id: int, rng: random.Random, tally: Tally
) -> None:
    """👍 or 👎; a third of the time a second press (the same: take back; the other: switch)."""
    for _ in range(2 if rng.random() < 0.3 else 1):
        shown = api.message(uid, message_id)
        index = rng.choice((0, 1))
        query = api.press_button(uid, message_id, text=shown.button_texts[index])
        joke_id = int(shown.callback_data[index].split(":")[1])
        press = Press(uid, joke_id, 1 if index == 0 else -1, query)
        tally.presses.append(press)
        press.answer = await wait_answer(api, query, 40)
        await asyncio.sleep(rng.uniform(0.2, 1.0))


async def user(
    api: LocalBotApi,
    uid: int,
    until: float,
    rng: random.Random,
    tally: Tally,
    *,
    think: float,
    reply_timeout: float,
) -> None:
    await asyncio.sleep(rng.uniform(0, think))
    patience = reply_timeout
    while time.monotonic() < until:
        sent = api.send_text(uid, rng.choice(WORDS))
        word = Ask(uid, sent.at)
        reply = await ask(api, word, sent.message_id, tally, patience)
        answered = word.kind in ANSWER_KINDS
        patience = reply_timeout if answered else min(reply_timeout, REFUSED_PATIENCE_S)
        message_id = getattr(reply, "message_id", 0)
        buttons = getattr(reply, "button_texts", [])
        if any(b.startswith("👍") for b in buttons):
            if rng.random() < 0.8:
                await vote(api, uid, message_id, rng, tally)
            if rng.random() < 0.1:
                pressed = time.monotonic()
                api.press_button(uid, message_id, text="🔁 Ещё")
                floor = api.chat(uid).next_message_id - 1
                await ask(api, Ask(uid, pressed, more=True), floor, tally, reply_timeout)
        await asyncio.sleep(rng.uniform(think / 2, think * 1.5))


async def run_users(
    api: LocalBotApi,
    count: int,
    seconds: float,
    seed: int,
    tally: Tally,
    *,
    think: float,
    reply_timeout: float,
) -> list[asyncio.Task[None]]:
    """Start `count` users (ids 10 000 + n) who go on for `seconds`; the tasks to await."""
    rng = random.Random(seed)
    until = time.monotonic() + seconds
    return [
        asyncio.create_task(
            user(
                api,
                10_000 + n,
                until,
                random.Random(rng.random()),
                tally,
                think=think,
                reply_timeout=reply_timeout,
            )
        )
        for n in range(count)
    ]


def kinds(asks: list[Ask]) -> Counter[str]:
    return Counter(a.kind or "no reply" for a in asks)
