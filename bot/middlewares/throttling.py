"""Fairness for the expensive handlers (those flagged `generation`).

A model is shared by everyone, so one person must not hog it: one request in flight per user
("уже пишу…"), and at most one new request per `rate_s` seconds ("не так быстро"). A message is
warned once per burst, whichever the reason, so a flood of 50 messages gets one polite reply, not
50; the burst ends when the user's next request is accepted. A button press is always answered
(Telegram keeps the button spinning otherwise), but with a small toast, not a message.
Other users are never affected: the state is per user.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Message, TelegramObject

from bot import texts
from bot.middlewares.handler import Handler
from bot.replies import answer_query


class GenerationGuardMiddleware(BaseMiddleware):
    def __init__(self, rate_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_s = rate_s
        self.clock = clock
        self.in_flight: set[int] = set()
        self.last_start: dict[int, float] = {}
        self.warned: set[int] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not get_flag(data, "generation"):
            return await handler(event, data)
        user = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        if user.id in self.in_flight:
            await self._tell(event, texts.ALREADY_WRITING, user_id=user.id)
            return None
        now = self.clock()
        if now - self.last_start.get(user.id, float("-inf")) < self.rate_s:
            await self._tell(event, texts.TOO_FAST, user_id=user.id)
            return None
        self.last_start[user.id] = now
        self.warned.discard(user.id)
        self.in_flight.add(user.id)
        try:
            return await handler(event, data)
        finally:
            self.in_flight.discard(user.id)
            self._forget_old(now)

    async def _tell(self, event: TelegramObject, text: str, *, user_id: int) -> None:
        if isinstance(event, CallbackQuery):
            await answer_query(event, text)  # a callback must be answered anyway
            return
        if user_id in self.warned:
            return
        self.warned.add(user_id)  # before the await: concurrent updates see it at once
        if isinstance(event, Message):
            if event.chat.type == ChatType.PRIVATE:
                await event.answer(text)
            else:  # in a group, say whom it is for
                await event.reply(text)

    def _forget_old(self, now: float) -> None:
        """Keep memory bounded: drop users whose last request is long past."""
        if len(self.last_start) < 10_000:
            return
        horizon = now - max(self.rate_s, 1.0) * 10
        for user_id in [u for u, t in self.last_start.items() if t < horizon]:
            del self.last_start[user_id]
            self.warned.discard(user_id)
