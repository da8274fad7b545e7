"""What the local Bot API server remembers: chats, messages with their edits, actions, callbacks.

Tests read these records to check what a user would see; they are plain dataclasses, updated in
place, so a `ChatMessage` a test holds always shows the message's current text and keyboard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from local_telegram.entities import Entity


@dataclass(frozen=True)
class Edit:
    """A message's content right after one edit (text or keyboard)."""

    text: str | None
    entities: list[Entity]
    reply_markup: dict[str, Any] | None
    at: float  # time.monotonic()
    date: int  # unix time, as Telegram's edit_date


@dataclass(eq=False)
class ChatMessage:
    """One message in a chat, the bot's or a user's, in its current state."""

    chat_id: int
    message_id: int
    from_bot: bool
    sender: dict[str, Any]  # Telegram User object of the author
    date: int  # unix time
    at: float  # time.monotonic() when it was sent
    text: str | None = None
    entities: list[Entity] = field(default_factory=list)
    reply_markup: dict[str, Any] | None = None  # inline keyboard; Telegram keeps only those
    extra: dict[str, Any] = field(default_factory=dict)  # sticker, photo, new_chat_members, ...
    upload: bytes | None = None  # the file the bot uploaded (sendPhoto), as received
    reply_to: ChatMessage | None = None
    update_id: int | None = None  # for users' messages: the update that carried it
    parse_mode: str | None = None  # what the bot asked for; recorded, never applied
    edits: list[Edit] = field(default_factory=list)
    edit_date: int | None = None
    deleted: bool = False
    seq: int = 0  # server-wide change counter at the last change (for the web page)

    @property
    def sender_id(self) -> int:
        return int(self.sender["id"])

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        if not self.reply_markup:
            return []
        return list(self.reply_markup.get("inline_keyboard") or [])

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline buttons row by row, flattened."""
        return [button for row in self.inline_keyboard for button in row]

    @property
    def button_texts(self) -> list[str]:
        return [str(button.get("text", "")) for button in self.buttons]

    @property
    def callback_data(self) -> list[str]:
        return [str(b["callback_data"]) for b in self.buttons if "callback_data" in b]

    def button(self, text: str | None = None, *, startswith: str | None = None) -> dict[str, Any]:
        """The first inline button whose text is `text` (or starts with `startswith`)."""
        for candidate in self.buttons:
            label = str(candidate.get("text", ""))
            if (text is not None and label == text) or (
                startswith is not None and label.startswith(startswith)
            ):
                return candidate
        raise LookupError(
            f"no button {text or startswith!r} on message {self.message_id} in chat "
            f"{self.chat_id}; buttons: {self.button_texts}"
        )


@dataclass(eq=False)
class Chat:
    id: int
    type: str  # private, group, supergroup, channel
    title: str | None = None
    first_name: str | None = None
    username: str | None = None
    messages: dict[int, ChatMessage] = field(default_factory=dict)
    next_message_id: int = 1
    actions: list[ChatAction] = field(default_factory=list)
    reply_keyboard: dict[str, Any] | None = None  # the last ReplyKeyboardMarkup still shown
    last_user_action_at: float = 0.0  # time.monotonic() of the last send/press by a user
    mark: int = 0  # the highest message id when a user last acted
    blocked: bool = False  # a private chat whose user blocked the bot

    def to_api(self) -> dict[str, Any]:
        chat: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "private":
            chat["first_name"] = self.first_name or "User"
        else:
            chat["title"] = self.title or f"Chat {self.id}"
        if self.username:
            chat["username"] = self.username
        return chat


@dataclass(frozen=True)
class ChatAction:
    action: str
    at: float
    seq: int


@dataclass(frozen=True)
class CallbackAnswer:
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int
    at: float
    seq: int


@dataclass(eq=False)
class CallbackQuery:
    id: str
    user_id: int
    chat_id: int
    message_id: int
    data: str
    at: float
    update_id: int
    answer: CallbackAnswer | None = None
    inline_message_id: str | None = None  # a press under a message posted through inline mode


@dataclass(eq=False)
class UpdateRecord:
    """An update queued for getUpdates and what became of it."""

    update_id: int
    payload: dict[str, Any]
    at: float
    delivered_at: float | None = None  # first returned by getUpdates
    confirmed_at: float | None = None  # the bot asked for a higher offset
    dropped: bool = False  # deleteWebhook(drop_pending_updates) or not in allowed_updates

    @property
    def kind(self) -> str:
        return next(key for key in self.payload if key != "update_id")


@dataclass(frozen=True)
class ApiCall:
    """One HTTP call of a Bot API method, as the server answered it."""

    method: str
    params: dict[str, Any]
    status: int  # HTTP status; 0 when the connection was dropped
    at: float
    fault: str | None = None
