"""Fairness for the expensive handlers (those flagged `generation`).

A model is shared by everyone, so one person must not hog it: one request in flight per user
("уже пишу…"), and at most one new request per `rate_s` seconds ("не так быстро"). A message is
warned once per burst, whichever the reason, so a flood of 50 messages gets one polite reply, not
50; the burst ends when the user's next request is accepted. A button press is always answered
(Telegram keeps the button spinning otherwise), but with a small toast, not a message; so is an
inline query, with a hint in place of the results (bot/inline_replies.py).
Other users are never affected: the state is per user. It lives in a `SharedState`
(bot/shared_state.py): this process's memory, or Redis when several replicas share the users.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, InlineQuery, Message, TelegramObject, Update

from bot import texts
from bot.inline_replies import answer_hint
from bot.middlewares.handler import Handler
from bot.replies import answer_query
from bot.shared_state import MemoryState, SharedState, Verdict


class GenerationGuardMiddleware(BaseMiddleware):
    def __init__(
        self,
        rate_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        state: SharedState | None = None,
    ) -> None:
        self.rate_s = rate_s
        self.state = state or MemoryState(clock=clock)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not get_flag(data, "generation"):
            return await handler(event, data)
        user = data.get("event_from_user")
        if user is None:
            return await handler(event, data)
        update = data.get("event_update")
        owner = f"update:{update.update_id}" if isinstance(update, Update) else ""
        admission = await self.state.admit(user.id, self.rate_s, owner)
        if not admission.admitted:
            refusal = admission.verdict is Verdict.IN_FLIGHT
            await self._tell(event, texts.ALREADY_WRITING if refusal else texts.TOO_FAST, user.id)
            return None
        try:
            return await handler(event, data)
        finally:
            await admission.release()

    async def _tell(self, event: TelegramObject, text: str, user_id: int) -> None:
        if isinstance(event, CallbackQuery):
            await answer_query(event, text)  # a callback must be answered anyway
            return
        if isinstance(event, InlineQuery):  # so must an inline query, or it spins on
            await answer_hint(event, text, texts.INLINE_RETRY)
            return
        if not await self.state.warn_once(user_id):  # noted before the reply is sent
            return
        if isinstance(event, Message):
            if event.chat.type == ChatType.PRIVATE:
                await event.answer(text)
            else:  # in a group, say whom it is for
                await event.reply(text)
