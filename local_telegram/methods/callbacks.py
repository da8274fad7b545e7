"""answerCallbackQuery: the answer to a button press, once, within the query's lifetime."""

from __future__ import annotations

import time

from local_telegram.params import Params, bad_request
from local_telegram.records import CallbackAnswer
from local_telegram.state import TelegramState

MAX_CALLBACK_ANSWER = 200
QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


async def answer_callback_query(state: TelegramState, params: Params) -> bool:
    query_id = params.str("callback_query_id")
    text = params.str("text")
    if text and len(text) > MAX_CALLBACK_ANSWER:
        raise bad_request("MESSAGE_TOO_LONG")
    query = state.callback_queries.get(query_id or "")
    if (
        query is None
        or query.answer is not None
        or time.monotonic() - query.at > state.callback_timeout_s
    ):
        raise bad_request(QUERY_TOO_OLD)
    query.answer = CallbackAnswer(
        callback_query_id=query.id,
        text=text or None,
        show_alert=params.bool("show_alert"),
        url=params.str("url"),
        cache_time=params.int("cache_time") or 0,
        at=time.monotonic(),
        seq=state.seq + 1,
    )
    state.bump()
    return True
