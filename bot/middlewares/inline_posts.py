"""Jokes posted through the bot's own inline mode are not requests for jokes.

A user who types `@bot Молоко` in the bot's private chat and picks a result sends a message whose
`via_bot` is this bot, and Telegram delivers it to the bot like any other message there. Read as
a starting word, the posted joke would get a "too long" reply or a joke about a joke.
"""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.types import Message, TelegramObject

from bot.middlewares.handler import Handler


class IgnoreOwnInlinePostsMiddleware(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        bot: Bot | None = data.get("bot")
        if (
            isinstance(event, Message)
            and event.via_bot is not None
            and bot is not None
            and event.via_bot.id == bot.id
        ):
            return None
        return await handler(event, data)


__all__ = ["IgnoreOwnInlinePostsMiddleware"]
