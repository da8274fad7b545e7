"""The web chat page of `python -m bot --local`: one local user talking to the bot in a browser.

The page (chat.html, inline CSS and JS, no external assets) long-polls `/ui/messages` and posts
to `/ui/send` and `/ui/press`; these act through the same control API the tests use, so what a
person sees in the browser is what the bot really sent through the Bot API.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from local_telegram import webchat_inline

if TYPE_CHECKING:
    from local_telegram.records import ChatMessage
    from local_telegram.server import LocalBotApi

TYPING_SHOWN_S = 5.0  # Telegram shows a chat action for 5 s or until the bot's next message
MAX_WAIT_S = 25.0
MAX_TEXT = 4096

_API_KEY: web.AppKey[LocalBotApi] = web.AppKey("local_bot_api")


def add_routes(app: web.Application, api: LocalBotApi) -> None:
    app[_API_KEY] = api
    app.router.add_get("/", _page)
    app.router.add_get("/ui/messages", _messages)
    app.router.add_post("/ui/send", _send)
    app.router.add_post("/ui/press", _press)
    webchat_inline.add_routes(app, api)  # the inline line: /ui/inline, /ui/choose, ...


def _page_html() -> str:
    return resources.files("local_telegram").joinpath("chat.html").read_text(encoding="utf-8")


async def _page(request: web.Request) -> web.Response:
    api = request.app[_API_KEY]
    html = _page_html().replace("__BOT_NAME__", _escape(str(api.bot_user["first_name"])))
    html = html.replace("__CHAT_INLINE_JS__", webchat_inline.script())
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _message_json(message: ChatMessage) -> dict[str, Any]:
    keyboard = [
        [
            {
                "text": str(button.get("text", "")),
                **({"data": button["callback_data"]} if "callback_data" in button else {}),
                **({"url": button["url"]} if "url" in button else {}),
                **(
                    {"switch_inline_query": str(button["switch_inline_query"])}
                    if "switch_inline_query" in button
                    else {}
                ),
                **(
                    {"switch_inline_current": str(button["switch_inline_query_current_chat"])}
                    if "switch_inline_query_current_chat" in button
                    else {}
                ),
            }
            for button in row
        ]
        for row in message.inline_keyboard
    ]
    text = message.text
    if text is None:  # a sticker, a photo...: name what it is
        kinds = [k for k in message.extra if k not in ("reply_to_message",)]
        text = f"[{', '.join(kinds) or 'сообщение'}]"
    return {
        "id": message.message_id,
        "from_bot": message.from_bot,
        "text": text,
        "entities": message.entities,
        "keyboard": keyboard,
        "edited": bool(message.edits),
        "deleted": message.deleted,
        "date": message.date,
        "reply_to": message.reply_to.message_id if message.reply_to else None,
    }


def _state(api: LocalBotApi, since: int) -> dict[str, Any]:
    chat = api.chats.get(api.web_user_id)
    messages: list[dict[str, Any]] = []
    toasts: list[dict[str, Any]] = []
    typing_ms = 0
    reply_keyboard = None
    if chat is not None:
        messages = [
            {**_message_json(m), **webchat_inline.message_fields(api, m.chat_id, m.message_id)}
            for m in chat.messages.values()
            if m.seq > since or since == 0
        ]
        toasts = [
            {"text": q.answer.text, "show_alert": q.answer.show_alert}
            for q in api.callback_queries.values()
            if q.chat_id == chat.id
            and q.answer
            and q.answer.text
            and q.answer.seq > since
            and since > 0
        ]
        typing = [a for a in chat.actions if a.action == "typing"]
        if typing:
            last = typing[-1].at
            last_bot = max((m.at for m in chat.messages.values() if m.from_bot), default=0.0)
            left = TYPING_SHOWN_S - (time.monotonic() - last)
            if last > last_bot and left > 0:
                typing_ms = int(left * 1000)
        if chat.reply_keyboard:
            reply_keyboard = [
                [str(b.get("text", b)) if isinstance(b, dict) else str(b) for b in row]
                for row in chat.reply_keyboard.get("keyboard", [])
            ]
    return {
        "seq": api.seq,
        "messages": messages,
        "toasts": toasts,
        "typing_ms": typing_ms,
        "reply_keyboard": reply_keyboard,
        "commands": api.my_commands(),
        "bot": {"name": api.bot_user["first_name"], "username": api.bot_username},
        "inline": webchat_inline.inline_json(api),
    }


async def _messages(request: web.Request) -> web.Response:
    """Changes since `since` (a change counter); waits up to `wait` s when there are none."""
    api = request.app[_API_KEY]
    try:
        since = int(request.query.get("since", "0"))
        wait = min(float(request.query.get("wait", "0")), MAX_WAIT_S)
    except ValueError:
        return web.json_response({"error": "bad since/wait"}, status=400)
    if since > api.seq:  # the server restarted: start over
        since = 0
    if wait > 0 and since == api.seq and not api.closing:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while since == api.seq and not api.closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            changed = api.changed
            try:
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                break
    return web.json_response(_state(api, since))


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "JSON expected"}', content_type="application/json"
        ) from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text='{"error": "JSON object expected"}', content_type="application/json"
        )
    return body


async def _send(request: web.Request) -> web.Response:
    api = request.app[_API_KEY]
    body = await _json_body(request)
    text = str(body.get("text", "")).strip()
    if not text or len(text) > MAX_TEXT:
        return web.json_response({"error": "текст пустой или слишком длинный"}, status=400)
    message = api.send_text(api.web_user_id, text, first_name=api.web_user_name)
    return web.json_response({"message_id": message.message_id, "update_id": message.update_id})


async def _press(request: web.Request) -> web.Response:
    api = request.app[_API_KEY]
    body = await _json_body(request)
    try:
        query_id = api.press_button(
            api.web_user_id,
            int(body["message_id"]),
            str(body["data"]),
            first_name=api.web_user_name,
        )
    except (KeyError, TypeError, ValueError, LookupError) as error:
        return web.json_response({"error": str(error)}, status=400)
    return web.json_response({"callback_query_id": query_id})
