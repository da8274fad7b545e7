"""A local stand-in for the Telegram Bot API: the bot runs, is tried and is tested without Telegram.

    api = LocalBotApi()            # or LocalBotApi(token="123:abc", port=8081)
    await api.start()              # serves http://127.0.0.1:<port>
    # point the bot at it: AiohttpSession(api=TelegramAPIServer.from_base(api.url))
    api.send_text(1, "кот")        # a user writes; the bot gets it from getUpdates
    reply = await api.wait_for_bot_message(1)

`api.faults` makes calls fail like Telegram sometimes does; `api.url + "/"` is a web chat page.
Inline mode: `api.send_inline_query(1, "кот", chat_id=-100)`, `api.wait_for_inline_answer(..)`,
`api.choose_inline_result(query_id, result_id)`, `api.press_inline_button(...)`.
The files: server.py (HTTP), methods/ (the Bot API methods), state.py (what it remembers),
users.py (the people writing), inline_users.py and inline_state.py (inline mode), driver.py
(lookups and waits), faults.py, webchat.py.
"""

from local_telegram.faults import Fault, FaultInjector, InjectedFault
from local_telegram.inline_state import InlineAnswer, InlineMessage, InlineQueryRecord
from local_telegram.params import ApiError
from local_telegram.records import (
    ApiCall,
    CallbackAnswer,
    CallbackQuery,
    Chat,
    ChatAction,
    ChatMessage,
    Edit,
    UpdateRecord,
)
from local_telegram.server import DEFAULT_TOKEN, WEB_USER_ID, LocalBotApi

__all__ = [
    "DEFAULT_TOKEN",
    "WEB_USER_ID",
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "CallbackQuery",
    "Chat",
    "ChatAction",
    "ChatMessage",
    "Edit",
    "Fault",
    "FaultInjector",
    "InjectedFault",
    "InlineAnswer",
    "InlineMessage",
    "InlineQueryRecord",
    "LocalBotApi",
    "UpdateRecord",
]
