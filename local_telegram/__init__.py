"""A local stand-in for the Telegram Bot API: the bot runs, is tried and is tested without Telegram.

    api = LocalBotApi()            # or LocalBotApi(token="123:abc", port=8081)
    await api.start()              # serves http://127.0.0.1:<port>
    # point the bot at it: AiohttpSession(api=TelegramAPIServer.from_base(api.url))
    api.send_text(1, "кот")        # a user writes; the bot gets it from getUpdates
    reply = await api.wait_for_bot_message(1)

`api.faults` makes calls fail like Telegram sometimes does; `api.url + "/"` is a web chat page.
The files: server.py (HTTP), methods/ (the Bot API methods), state.py (what it remembers),
users.py (the people writing), driver.py (lookups and waits), faults.py, webchat.py.
"""

from local_telegram.faults import Fault, FaultInjector, InjectedFault
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
    "LocalBotApi",
    "UpdateRecord",
]
