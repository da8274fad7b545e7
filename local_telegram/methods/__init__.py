"""The Bot API methods the bot uses, answered from `TelegramState` the way Telegram answers them.

Only what the bot calls is here; any other method gets Telegram's 404. Each handler is
`async (state, params) -> result`; an `ApiError` it raises becomes Telegram's error answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from local_telegram.methods import callbacks, inline, media, messages, profile, webhook
from local_telegram.params import Params
from local_telegram.state import TelegramState

Handler = Callable[[TelegramState, Params], Awaitable[Any]]

_HANDLERS: dict[str, Handler] = {
    "getMe": profile.get_me,
    "getUpdates": webhook.get_updates,  # 409 while a webhook is set, else updates.py
    "sendMessage": messages.send_message,
    "sendPhoto": media.send_photo,
    "editMessageText": inline.edit_message_text,  # by inline_message_id, else messages.py
    "editMessageReplyMarkup": inline.edit_message_reply_markup,
    "deleteMessage": messages.delete_message,
    "answerCallbackQuery": callbacks.answer_callback_query,
    "answerInlineQuery": inline.answer_inline_query,
    "sendChatAction": messages.send_chat_action,
    "setMyCommands": profile.set_my_commands,
    "getMyCommands": profile.get_my_commands,
    "deleteMyCommands": profile.delete_my_commands,
    "setWebhook": webhook.set_webhook,
    "deleteWebhook": webhook.delete_webhook,
    "getWebhookInfo": webhook.get_webhook_info,
    "close": profile.accept,
    "logOut": profile.accept,
}
_BY_LOWER_NAME = {name.lower(): (name, handler) for name, handler in _HANDLERS.items()}


def resolve_method(name: str) -> tuple[str, Handler] | None:
    """(canonical name, handler) of a method; Telegram's method names ignore case."""
    return _BY_LOWER_NAME.get(name.lower())
