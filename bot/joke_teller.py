"""The one path from a starting word to a rated joke in a chat.

Handlers for text, /joke, mentions, 🔁 and retries all end here, so the order of effects is the
same everywhere: generate (showing "typing…"), store the joke, send it, remember its message id.
If sending fails the stored joke is removed again, so nothing half-written stays behind.
"""

from __future__ import annotations

import logging
import secrets
from collections import OrderedDict

from aiogram import Bot
from aiogram.utils.chat_action import ChatActionSender
from generation.registry import MethodRegistry
from generation.service import GenerationService
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage
from bot import texts
from bot.keyboards import joke_keyboard, retry_keyboard
from generation.types import GenerationBusy, GenerationError, GenerationRequest

log = logging.getLogger(__name__)


class RetryTokens:
    """Remembers recent failed requests so the "🔁 Ещё раз" button can repeat them.

    Telegram allows 64 bytes of callback data, too few for a Cyrillic phrase, so the button
    carries a short random token instead; the oldest tokens are forgotten first.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def put(self, prompt: str, method: str) -> str:
        token = secrets.token_urlsafe(8)
        self._items[token] = (prompt, method)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return token

    def get(self, token: str) -> tuple[str, str] | None:
        return self._items.get(token)


class JokeTeller:
    def __init__(
        self,
        *,
        service: GenerationService,
        registry: MethodRegistry,
        sessionmaker: async_sessionmaker[AsyncSession],
        default_method: str,
    ) -> None:
        self.service = service
        self.registry = registry
        self.sessionmaker = sessionmaker
        self.default_method = default_method
        self.retry_tokens = RetryTokens()

    def method_names(self) -> list[str]:
        return [m.name for m in self.registry.methods()]

    def resolve_method(self, stored: str | None) -> str | None:
        """The user's method if it still exists, else the default, else the first registered."""
        names = self.method_names()
        for candidate in (stored, self.default_method):
            if candidate in names:
                return candidate
        return names[0] if names else None

    def display_name(self, method: str) -> str:
        for info in self.registry.methods():
            if info.name == method:
                return info.display_name
        return method

    async def user_method(self, session: AsyncSession, user_id: int) -> str | None:
        return self.resolve_method(await storage.get_user_method(session, user_id))

    async def tell(
        self,
        bot: Bot,
        *,
        chat_id: int,
        user_id: int,
        prompt: str,
        method: str | None,
        reply_to: int | None = None,
    ) -> int | None:
        """Write and send one joke; returns its stored id, or None if the user got an apology."""
        method = self.resolve_method(method)
        if method is None:
            await bot.send_message(chat_id, texts.NO_METHODS, reply_to_message_id=reply_to)
            return None
        try:
            async with ChatActionSender.typing(bot=bot, chat_id=chat_id, initial_sleep=0.0):
                jokes = await self.service.generate(GenerationRequest(prompt=prompt, method=method))
        except GenerationBusy:
            await bot.send_message(chat_id, texts.BUSY, reply_to_message_id=reply_to)
            return None
        except GenerationError as exc:
            log.warning("generation failed for method %s: %s", method, exc)
            token = self.retry_tokens.put(prompt, method)
            await bot.send_message(
                chat_id,
                texts.GENERATION_FAILED,
                reply_markup=retry_keyboard(token),
                reply_to_message_id=reply_to,
            )
            return None
        joke = jokes[0]
        async with self.sessionmaker() as session:
            await storage.touch_user(session, user_id)
            joke_id = await storage.save_joke(
                session,
                user_id=user_id,
                chat_id=chat_id,
                prompt=prompt,
                text=joke.text,
                method=joke.method,
                model=joke.model,
                params=dict(joke.params),
                latency_ms=joke.latency_ms,
            )
        try:
            message = await bot.send_message(
                chat_id,
                joke.text,
                reply_markup=joke_keyboard(joke_id, 0, 0, self.display_name(method)),
                reply_to_message_id=reply_to,
            )
        except BaseException:
            async with self.sessionmaker() as session:
                await storage.delete_joke(session, joke_id)
            raise
        async with self.sessionmaker() as session:
            await storage.attach_message(session, joke_id, chat_id, message.message_id)
        return joke_id
