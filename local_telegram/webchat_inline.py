"""The web chat's inline mode: the person at the page types `@bot Молоко`, sees the bot's answer
in a line above the input (`#inline-results` in chat.html) and clicks a result to post it.

The page's part of it is chat_inline.js, put into chat.html where it says __CHAT_INLINE_JS__ (the
page stays one file with no external assets). Routes (JSON in, JSON out), acting through the
same moves the tests use (`inline_users.py`):
  POST /ui/inline        {"query": "Молоко"}                  -> {"inline_query_id": ...}
  POST /ui/choose        {"inline_query_id", "result_id"}      -> {"inline_message_id": ...}
  POST /ui/press-inline  {"inline_message_id", "data"}         -> {"callback_query_id": ...}
and `inline_json(api)`, the page's view of the latest inline query, sent with every poll.
"""

from __future__ import annotations

import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from local_telegram.inline_users import MAX_QUERY

if TYPE_CHECKING:
    from local_telegram.server import LocalBotApi

MAX_SHOWN = 20  # results shown in the line (Telegram's clients scroll further)


def add_routes(app: web.Application, api: LocalBotApi) -> None:
    async def inline(request: web.Request) -> web.Response:
        body = await _body(request)
        query = str(body.get("query", ""))[:MAX_QUERY]
        query_id = api.send_inline_query(api.web_user_id, query, first_name=api.web_user_name)
        return web.json_response({"inline_query_id": query_id})

    async def choose(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            record = api.inline_query_record(str(body["inline_query_id"]))
            if record.user_id != api.web_user_id:
                raise LookupError("not your inline query")
            posted = api.choose_inline_result(record.id, str(body["result_id"]))
        except (KeyError, LookupError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"inline_message_id": posted.inline_message_id})

    async def press(request: web.Request) -> web.Response:
        body = await _body(request)
        try:
            query_id = api.press_inline_button(
                api.web_user_id,
                str(body["inline_message_id"]),
                str(body["data"]),
                first_name=api.web_user_name,
            )
        except (KeyError, LookupError, ValueError) as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"callback_query_id": query_id})

    app.router.add_post("/ui/inline", inline)
    app.router.add_post("/ui/choose", choose)
    app.router.add_post("/ui/press-inline", press)


def script() -> str:
    """The page's inline-mode script (chat_inline.js)."""
    return resources.files("local_telegram").joinpath("chat_inline.js").read_text("utf-8")


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "JSON object expected"}', content_type="application/json"
        )
    return body


def inline_json(api: LocalBotApi) -> dict[str, Any] | None:
    """The web user's latest inline query: its text, whether it was answered, and the results
    as the line shows them (title and description, never read as HTML by the page)."""
    record = next(
        (q for q in reversed(api.inline.queries.values()) if q.user_id == api.web_user_id), None
    )
    if record is None:
        return None
    answer = record.answer
    if answer is not None:
        status = "answered"
    elif time.monotonic() - record.at > api.inline.query_timeout_s:
        status = "expired"
    else:
        status = "waiting"
    results = [
        {
            "id": str(result.get("id", "")),
            "title": str(result.get("title", "")),
            "description": str(result.get("description", "")),
        }
        for result in (answer.results if answer else [])[:MAX_SHOWN]
    ]
    return {"id": record.id, "query": record.query, "status": status, "results": results}


def message_fields(api: LocalBotApi, chat_id: int, message_id: int) -> dict[str, Any]:
    """What the page needs of a message posted through inline mode: its inline_message_id (its
    buttons send callback queries with it) and the bot it came via."""
    inline_id = api.inline.message_id_of(chat_id, message_id)
    if inline_id is None:
        return {}
    return {"inline_message_id": inline_id, "via_bot": api.bot_username}
