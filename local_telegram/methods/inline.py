"""answerInlineQuery, and the edits of messages posted through inline mode.

answerInlineQuery is checked as Telegram checks it, in its words: a query answered once and only
while fresh, at most 50 results with unique ids of 1-64 bytes, a title and a message text on
every article, keyboards as under any message. Only article results are supported (the bot
offers nothing else).

editMessageText and editMessageReplyMarkup take `inline_message_id` instead of chat and message
ids for such messages; Telegram then answers `true`, not the message. Without it the ordinary
handlers in `messages.py` run.
"""

from __future__ import annotations

import time
from typing import Any

from local_telegram.inline_state import InlineAnswer
from local_telegram.methods import messages
from local_telegram.methods.markup import check_inline_keyboard, reply_markup
from local_telegram.methods.messages import NOT_MODIFIED, message_text
from local_telegram.params import Params, bad_request
from local_telegram.records import ChatMessage
from local_telegram.state import TelegramState

MAX_RESULTS = 50
MAX_RESULT_ID = 64  # bytes
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
RESULT_TYPES = frozenset({"article"})
DEFAULT_CACHE_S = 300  # Telegram's cache_time when the bot gives none


async def answer_inline_query(state: TelegramState, params: Params) -> bool:
    inline = state.inline
    record = inline.queries.get(params.str("inline_query_id") or "")
    if (
        record is None
        or record.answer is not None
        or time.monotonic() - record.at > inline.query_timeout_s
    ):
        raise bad_request(QUERY_TOO_OLD)
    results = params.json("results", "can't parse JSON encoded inline query results")
    if not isinstance(results, list):
        raise bad_request("can't parse JSON encoded inline query results")
    if len(results) > MAX_RESULTS:
        raise bad_request("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    for result in results:
        result_id = _check_result(result)
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
    button = params.json("button", "can't parse inline query results button")
    cache_time = params.int("cache_time")
    answer = InlineAnswer(
        results=results,
        cache_time=DEFAULT_CACHE_S if cache_time is None else max(0, cache_time),
        is_personal=params.bool("is_personal"),
        next_offset=params.str("next_offset") or "",
        button=button if isinstance(button, dict) else None,
        at=time.monotonic(),
        seq=state.seq + 1,
    )
    inline.remember(record, answer)
    state.bump()
    return True


def _check_result(result: Any) -> str:
    """The id of a valid result; Telegram's 400 for an invalid one."""
    if not isinstance(result, dict):
        raise bad_request("can't parse inline query result: InlineQueryResult must be an Object")
    kind = result.get("type")
    if kind not in RESULT_TYPES:
        raise bad_request(f'can\'t parse inline query result: unsupported result type "{kind}"')
    result_id = result.get("id")
    if not isinstance(result_id, str) or not 1 <= len(result_id.encode()) <= MAX_RESULT_ID:
        raise bad_request("RESULT_ID_INVALID")
    title = result.get("title")
    if not isinstance(title, str):
        raise bad_request('can\'t parse inline query result: Field "title" must be of type String')
    if not title.strip():
        raise bad_request("RESULT_TITLE_EMPTY")
    content = result.get("input_message_content")
    if not isinstance(content, dict):
        raise bad_request(
            'can\'t parse inline query result: Field "input_message_content" must be of type Object'
        )
    text = {"text": content.get("message_text"), "entities": content.get("entities")}
    message_text(Params(text))  # empty or too long: Telegram's own words
    markup = result.get("reply_markup")
    if markup is not None:
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            raise bad_request('can\'t find field "inline_keyboard"')
        check_inline_keyboard(markup["inline_keyboard"])
    return result_id


def inline_message(state: TelegramState, params: Params) -> ChatMessage | None:
    """The message an edit names by `inline_message_id`; None when it names none that way."""
    inline_id = params.str("inline_message_id")
    if inline_id in (None, ""):
        return None
    posted = state.inline.messages.get(inline_id)
    if posted is None or posted.message.deleted:
        raise bad_request("MESSAGE_ID_INVALID")
    return posted.message


async def edit_message_text(state: TelegramState, params: Params) -> Any:
    message = inline_message(state, params)
    if message is None:
        return await messages.edit_message_text(state, params)
    text, entities = message_text(params)
    markup = reply_markup(params, inline_only=True)
    if text == message.text and entities == message.entities and markup == message.reply_markup:
        raise bad_request(NOT_MODIFIED)
    message.text, message.entities, message.reply_markup = text, entities, markup
    message.parse_mode = params.str("parse_mode") or None
    state.record_edit(message)
    return True


async def edit_message_reply_markup(state: TelegramState, params: Params) -> Any:
    message = inline_message(state, params)
    if message is None:
        return await messages.edit_message_reply_markup(state, params)
    markup = reply_markup(params, inline_only=True)
    if markup == message.reply_markup:
        raise bad_request(NOT_MODIFIED)
    message.reply_markup = markup
    state.record_edit(message)
    return True
