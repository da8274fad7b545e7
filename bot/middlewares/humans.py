"""Messages from other bots get no joke.

Telegram does not show bots each other's messages in groups, so a message whose sender is a bot
is a forged update or a bridge relaying bots, and answering it risks two bots talking forever.
The exception is Telegram's own stand-in for an anonymous group admin (and a channel posting in
its linked group): `from_user` is a bot there, but `sender_chat` names who is really writing, a
person the bot answers like anyone else.
"""

from __future__ import annotations

from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Message, TelegramObject

from bot.middlewares.handler import Handler


class IgnoreBotsMiddleware(BaseMiddleware):
    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, Message) and is_from_a_bot(event):
            return None
        return await handler(event, data)


def is_from_a_bot(message: Message) -> bool:
    sender = message.from_user
    return sender is not None and sender.is_bot and message.sender_chat is None


__all__ = ["IgnoreBotsMiddleware", "is_from_a_bot"]
