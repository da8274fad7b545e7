"""sendMessage, editMessageText, editMessageReplyMarkup, deleteMessage and sendChatAction.

Each checks what Telegram checks where that is cheap (empty or too long text, identical edits,
a reply to a missing message), with Telegram's own wording, so a bot that works here does not
trip over those in production. Text is kept as sent: `parse_mode` is recorded on the message but
never applied, because the bot sends plain text.
"""

from __future__ import annotations

import time
from typing import Any

from local_telegram.entities import Entity, strip_text
from local_telegram.methods.markup import apply_reply_keyboard, reply_markup
from local_telegram.params import Params, bad_request
from local_telegram.records import Chat, ChatAction, ChatMessage
from local_telegram.state import TelegramState

MAX_TEXT = 4096
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)


def message_text(params: Params) -> tuple[str, list[Entity]]:
    """The text and entities of a message as Telegram would store them (trimmed, checked)."""
    text = params.str("text")
    if not text:
        raise bad_request("message text is empty")
    entities = params.json("entities", "can't parse entities JSON object")
    if not entities:
        entities = []
    elif not isinstance(entities, list):
        raise bad_request("can't parse entities JSON object")
    text, entities = strip_text(text, list(entities))
    if not text:
        raise bad_request("message text is empty")
    if len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    return text, entities


def reply_target(chat: Chat, params: Params) -> ChatMessage | None:
    """The message this one replies to (reply_parameters or the older reply_to_message_id)."""
    reply = params.json("reply_parameters", "can't parse reply parameters JSON object")
    message_id: int | None = None
    allow_without = params.bool("allow_sending_without_reply")
    if isinstance(reply, dict) and reply.get("message_id") is not None:
        message_id = int(reply["message_id"])
        allow_without = allow_without or bool(reply.get("allow_sending_without_reply"))
    elif params.raw("reply_to_message_id") not in (None, ""):
        message_id = params.int("reply_to_message_id")
    if message_id is None:
        return None
    target = chat.messages.get(message_id)
    if target is None or target.deleted:
        if allow_without:
            return None
        raise bad_request("message to be replied not found")
    return target


def message_to_edit(state: TelegramState, params: Params) -> ChatMessage:
    if params.raw("inline_message_id") not in (None, ""):
        raise bad_request("MESSAGE_ID_INVALID")
    chat = state.chat_for_send(params)
    message_id = params.int("message_id", required=True, what="message identifier")
    message = chat.messages.get(message_id or 0)
    if message is None or message.deleted:
        raise bad_request("message to edit not found")
    if not message.from_bot:
        raise bad_request("message can't be edited")
    return message


async def send_message(state: TelegramState, params: Params) -> dict[str, Any]:
    chat = state.chat_for_send(params)
    text, entities = message_text(params)
    markup = reply_markup(params)
    reply_to = reply_target(chat, params)
    apply_reply_keyboard(chat, markup)
    inline = markup if markup and "inline_keyboard" in markup else None
    message = state.new_message(
        chat,
        from_bot=True,
        sender=state.bot_user,
        text=text,
        entities=entities,
        reply_markup=inline,
        reply_to=reply_to,
        parse_mode=params.str("parse_mode") or None,
    )
    return state.message_to_api(message)


async def edit_message_text(state: TelegramState, params: Params) -> dict[str, Any]:
    message = message_to_edit(state, params)
    text, entities = message_text(params)
    markup = reply_markup(params, inline_only=True)
    if message.text is None:
        raise bad_request("there is no text in the message to edit")
    if text == message.text and entities == message.entities and markup == message.reply_markup:
        raise bad_request(NOT_MODIFIED)
    message.text, message.entities, message.reply_markup = text, entities, markup
    message.parse_mode = params.str("parse_mode") or None
    state.record_edit(message)
    return state.message_to_api(message)


async def edit_message_reply_markup(state: TelegramState, params: Params) -> dict[str, Any]:
    message = message_to_edit(state, params)
    markup = reply_markup(params, inline_only=True)
    if markup == message.reply_markup:
        raise bad_request(NOT_MODIFIED)
    message.reply_markup = markup
    state.record_edit(message)
    return state.message_to_api(message)


async def delete_message(state: TelegramState, params: Params) -> bool:
    chat = state.chat_for_send(params)
    message_id = params.int("message_id", required=True, what="message identifier")
    message = chat.messages.get(message_id or 0)
    if message is None or message.deleted:
        raise bad_request("message to delete not found")
    message.deleted = True
    message.seq = state.bump()
    return True


async def send_chat_action(state: TelegramState, params: Params) -> bool:
    chat = state.chat_for_send(params)
    action = params.str("action")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    chat.actions.append(ChatAction(action=action, at=time.monotonic(), seq=state.seq + 1))
    state.bump()
    return True
