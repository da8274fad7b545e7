"""The bot and its simulated users for `bench.feedback_loop`: the real bot in its own process
(`python -m bot`'s main(), as in bench.soak) against the local Bot API server, users who send a
word, read the joke and press the real 👍/👎 button their hidden taste says, and an admin who
asks for `/export` and `/stats` over the same HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.soak import wait_answer, wait_reply
from bench.soak_bot import BotProcess

if TYPE_CHECKING:
    from local_telegram import LocalBotApi

ADMIN_ID = 999_000_001
FIRST_USER = 20_000
LIKE, DISLIKE = 0, 1  # the vote buttons' places under a joke: 👍 first, 👎 second


class FeedbackBot(BotProcess):
    """The bot child with the loop's settings: one method, best of N, an admin, an experiment."""

    def __init__(
        self,
        api: LocalBotApi,
        workdir: Path,
        *,
        gpt_model: Path,
        method: str,
        experiment: str | None = None,
        extra_env: dict[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        args = argparse.Namespace(
            timeout=timeout, model_delay=0.0, slow_rate=0.0, slow_s=0.0, gpt_model=gpt_model
        )
        super().__init__(api, workdir, args)
        self.method = method
        self.experiment = experiment
        self.extra_env = extra_env or {}

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(
            ADMIN_IDS=str(ADMIN_ID),
            DEFAULT_METHOD=self.method,
            ENABLE_CLASSIC="false",
            THROTTLE_RATE_S="0",
            QUEUE_DEPTH="1024",
            SOAK_LOG_LEVEL="WARNING",
        )
        env.pop("EXPERIMENT", None)
        if self.experiment:
            env["EXPERIMENT"] = self.experiment
        env.update(self.extra_env)
        return env


@dataclass
class CastVote:
    user: int
    joke_id: int
    word: str
    text: str
    liked: bool
    answer: str | None  # the bot's answer to the press ("Спасибо!")


@dataclass
class Round:
    """One phase's votes, and what else the users met on the way."""

    votes: list[CastVote] = field(default_factory=list)
    other_replies: int = 0  # busy, apologies: the word is sent again later
    seconds: float = 0.0

    @property
    def likes(self) -> int:
        return sum(v.liked for v in self.votes)


Likes = Callable[[int, int, str], bool]  # (user, joke id, text) -> 👍?


async def user_votes(
    api: LocalBotApi, uid: int, words: Iterator[str], likes: Likes, result: Round, want: int
) -> None:
    """One user: word, joke, vote, until the round has `want` votes or the words run out."""
    for word in words:
        for _attempt in range(3):  # a word that keeps failing is left for the next one
            if len(result.votes) >= want:
                break
            sent = api.send_text(uid, word)
            reply = await wait_reply(api, uid, sent.message_id, 120)
            data = [] if reply is None else list(reply.callback_data)
            if reply is None or len(data) < 2 or not data[LIKE].startswith("v:"):
                result.other_replies += 1
                await asyncio.sleep(1.0)  # busy or an apology: try the word again
                continue
            joke_id = int(data[LIKE].split(":")[1])
            text = reply.text or ""
            liked = likes(uid, joke_id, text)
            query = api.press_button(uid, reply.message_id, data[LIKE if liked else DISLIKE])
            answer = await wait_answer(api, query, 60)
            result.votes.append(CastVote(uid, joke_id, word, text, liked, answer))
            break
        if len(result.votes) >= want:
            return


async def vote_round(
    api: LocalBotApi, words: list[str], likes: Likes, *, users: int, jokes: int
) -> Round:
    """`users` users share the word list (each word once, in order) until `jokes` votes (a few
    more: the users who were reading a joke when the last vote came in vote on it too)."""
    loop = asyncio.get_running_loop()
    result = Round()
    began = loop.time()
    shared = iter(words)
    await asyncio.gather(
        *(user_votes(api, FIRST_USER + n, shared, likes, result, jokes) for n in range(users))
    )
    result.seconds = loop.time() - began
    return result


HEADER = re.compile(r"Выгрузка: (\d+) ")


@dataclass
class Export:
    count: int  # what the bot's header says it holds
    lines: list[str]  # the JSON lines it sent
    truncated: bool  # the bot said it sent only its first messages


async def export_via_bot(api: LocalBotApi, timeout: float = 60.0) -> Export:
    """/export as the admin: the header, then JSON lines in messages, read until all arrived."""
    sent = api.send_text(ADMIN_ID, "/export")
    header = await api.wait_for_bot_message(ADMIN_ID, after=sent.message_id, timeout=timeout)
    found = HEADER.search(header.text or "")
    if found is None:
        raise RuntimeError(f"/export answered {header.text!r}")
    count = int(found.group(1))
    truncated = "\n" in (header.text or "")  # the "first N messages" note
    lines: list[str] = []
    after = header.message_id
    while len(lines) < count:
        try:
            message = await api.wait_for_bot_message(ADMIN_ID, after=after, timeout=5.0)
        except TimeoutError:
            if truncated:
                break
            raise
        after = message.message_id
        lines += [line for line in (message.text or "").splitlines() if line.strip()]
    return Export(count, lines, truncated)


async def stats_via_bot(api: LocalBotApi, timeout: float = 30.0) -> str:
    sent = api.send_text(ADMIN_ID, "/stats")
    reply = await api.wait_for_bot_message(ADMIN_ID, after=sent.message_id, timeout=timeout)
    return reply.text or ""


def records(lines: list[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in lines]


__all__ = [
    "ADMIN_ID",
    "CastVote",
    "Export",
    "FeedbackBot",
    "Round",
    "export_via_bot",
    "records",
    "stats_via_bot",
    "vote_round",
]
