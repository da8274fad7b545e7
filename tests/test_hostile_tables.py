"""Odd and hostile input, as tables: every kind of update and message, strange text, forged buttons.

Each row says what arrives and what the user must see; every row also checks that nothing was
stored that should not be and that no handler raised (the error handler's counter did not move).
The rows share one running bot (a new one per row would cost a second each); every row plays a
user and a group of its own, so rows cannot see each other's effects.

Decisions pinned down here:
* Only text in a private chat (or /joke and @mentions in groups) asks for a joke. Forwarded text
  counts as text. Stickers, photos, voice and the like in a private chat get "I only understand
  text"; in groups everything not addressed to the bot is ignored, and service messages (joins,
  leaves, pins, title changes) are ignored everywhere.
* Update kinds the bot has no handler for (edited messages, channel posts, membership changes,
  inline queries, reactions, ...) are not even requested (allowed_updates); if they arrive anyway,
  the dispatcher drops them without an error.
* Text is never interpreted as markup (no parse_mode); invisible and control characters are
  removed before the length checks; a lone UTF-16 surrogate is removed like any other.
* Callback data is untrusted: anything our buttons did not produce gets "this button is
  outdated" and changes nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiogram.types import Update

from tests.bot_harness import TOKEN, RunningBot
from tests.fault_kit import idle, running_fake_bot
from tests.local_api import LocalBotApi

pytestmark = pytest.mark.asyncio(loop_scope="module")

NOT_TEXT = "только текст"
JOKE = "joke"
_ids = itertools.count(1)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningBot]:
    db = Path(tmp_path_factory.mktemp("hostile")) / "jokes.db"
    async with LocalBotApi(token=TOKEN) as api, running_fake_bot(api, db) as env:
        yield env


@dataclass
class Case:
    """One row's own user and group, and the bot's error count before the row."""

    env: RunningBot
    user: int = field(default_factory=lambda: 2000 + next(_ids))
    errors_before: int = 0

    def __post_init__(self) -> None:
        self.group = -(1_000_000 + self.user)
        self.errors_before = self.env.app.errors.count

    @property
    def api(self) -> LocalBotApi:
        return self.env.api

    def chat(self) -> dict[str, Any]:
        return {"id": self.user, "type": "private", "first_name": "Тестер"}

    def sender(self) -> dict[str, Any]:
        return {"id": self.user, "is_bot": False, "first_name": "Тестер"}

    def stored(self) -> tuple[int, int, int]:
        """Rows about this row's user: users, jokes (in their chat or group), votes."""
        one = self.env.rows
        return (
            one("SELECT COUNT(*) FROM users WHERE id = ?", self.user)[0][0],
            one("SELECT COUNT(*) FROM jokes WHERE chat_id IN (?, ?)", self.user, self.group)[0][0],
            one("SELECT COUNT(*) FROM votes WHERE user_id = ?", self.user)[0][0],
        )

    @property
    def new_errors(self) -> int:
        return self.env.app.errors.count - self.errors_before

    async def silent(self, chat: int) -> None:
        await idle(self.env)
        await asyncio.sleep(0.05)
        assert self.api.bot_messages(chat) == []


@pytest.fixture
def case(shared: RunningBot) -> Case:
    return Case(shared)


# --- messages that are not text ---------------------------------------------------------------

FILE = {"file_id": "f1", "file_unique_id": "u1"}
CONTENT: dict[str, Any] = {
    "sticker": {**FILE, "type": "regular", "width": 512, "height": 512, "is_animated": False,
                "is_video": False},
    "photo": [{**FILE, "width": 90, "height": 90}],
    "voice": {**FILE, "duration": 2},
    "video": {**FILE, "width": 1, "height": 1, "duration": 1},
    "video_note": {**FILE, "length": 240, "duration": 3},
    "animation": {**FILE, "width": 1, "height": 1, "duration": 1},
    "document": {**FILE, "file_name": "anekdot.txt"},
    "audio": {**FILE, "duration": 60},
    "contact": {"phone_number": "+70000000000", "first_name": "Вася"},
    "location": {"latitude": 55.75, "longitude": 37.62},
    "venue": {"location": {"latitude": 55.75, "longitude": 37.62}, "title": "Кафе",
              "address": "Тверская, 1"},
    "dice": {"emoji": "🎲", "value": 4},
    "poll": {"id": "p1", "question": "Смешно?", "options": [
        {"text": "да", "voter_count": 0, "persistent_id": "1"},
        {"text": "нет", "voter_count": 0, "persistent_id": "2"}],
        "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
        "allows_multiple_answers": False, "allows_revoting": False, "members_only": False},
}
SERVICE: dict[str, Any] = {
    "new_chat_members": [{"id": 77, "is_bot": False, "first_name": "Новенький"}],
    "left_chat_member": {"id": 78, "is_bot": False, "first_name": "Ушедший"},
    "new_chat_title": "Анекдоты",
    "group_chat_created": True,
    "pinned_message": {"message_id": 1, "date": 0, "chat": {"id": -1, "type": "group"}},
    "migrate_to_chat_id": -1009999,
    "delete_chat_photo": True,
}


@pytest.mark.parametrize("kind", sorted(CONTENT))
async def test_private_non_text_gets_only_text_reply(case: Case, kind: str) -> None:
    case.api.send_message(case.user, **{kind: CONTENT[kind]})
    reply = await case.api.wait_for_bot_message(case.user)
    assert NOT_TEXT in (reply.text or "")
    await idle(case.env)
    assert case.stored() == (0, 0, 0) and case.new_errors == 0


@pytest.mark.parametrize("kind", sorted(CONTENT) + sorted(SERVICE))
async def test_group_non_text_and_service_messages_are_ignored(case: Case, kind: str) -> None:
    fields = {kind: (CONTENT | SERVICE)[kind]}
    case.api.send_message(case.user, chat_id=case.group, chat_type="group", **fields)
    await case.silent(case.group)
    assert case.stored() == (0, 0, 0) and case.new_errors == 0


@pytest.mark.parametrize("kind", ["write_access_allowed", "users_shared", "chat_shared"])
async def test_private_service_messages_are_ignored(case: Case, kind: str) -> None:
    fields = {
        "write_access_allowed": {"from_request": True},
        "users_shared": {"request_id": 1, "users": [{"user_id": 5}]},
        "chat_shared": {"request_id": 1, "chat_id": -5},
    }
    case.api.send_message(case.user, **{kind: fields[kind]})
    await case.silent(case.user)
    assert case.stored() == (0, 0, 0) and case.new_errors == 0


async def test_forwarded_text_is_treated_as_text(case: Case) -> None:
    origin = {"type": "hidden_user", "sender_user_name": "Кто-то", "date": 1700000000}
    case.api.send_message(case.user, text="Штирлиц", forward_origin=origin)
    joke = await case.api.wait_for_bot_message(case.user)
    assert (joke.text or "").startswith("Штирлиц")
    await idle(case.env)
    assert case.new_errors == 0


# --- updates the bot cannot read, or has no handler for ---------------------------------------


def poison(case: Case, kind: str) -> dict[str, Any]:
    return {
        "poll-of-a-newer-api": {"message": {
            "chat": case.chat(), "from": case.sender(), "poll": {"id": "p1", "question": "?"}}},
        "text-not-a-string": {"message": {"chat": case.chat(), "from": case.sender(), "text": 42}},
        "query-without-sender": {"callback_query": {"id": f"q{case.user}", "data": "v:1:1"}},
        "not-an-object": {"message": "not an object"},
    }[kind]


@pytest.mark.parametrize(
    "kind", ["poll-of-a-newer-api", "text-not-a-string", "query-without-sender", "not-an-object"]
)
async def test_unreadable_update_is_skipped_not_fatal(case: Case, kind: str) -> None:
    """One update aiogram cannot read must not block its batch or the ones after it."""
    api, other = case.api, Case(case.env)
    skipped = case.env.app.tracker.skipped
    api.send_text(other.user, "Кот")
    api.send_update(poison(case, kind))
    api.send_text(case.user, "Пёс")
    assert ((await api.wait_for_bot_message(other.user)).text or "").startswith("Кот")
    assert ((await api.wait_for_bot_message(case.user)).text or "").startswith("Пёс")
    await idle(case.env)
    assert case.env.app.tracker.skipped == skipped + 1 and case.new_errors == 0


def unhandled(case: Case, kind: str) -> dict[str, Any]:
    chat, sender = case.chat(), case.sender()
    message = {"message_id": 1, "date": 1700000000, "chat": chat, "from": sender, "text": "Кот"}
    channel = {"id": case.group, "type": "channel", "title": "Канал"}
    member = {
        "chat": chat, "from": sender, "date": 1700000000,
        "old_chat_member": {"status": "member", "user": sender},
        "new_chat_member": {"status": "kicked", "user": sender, "until_date": 0},
    }
    return {
        "edited_message": {**message, "edit_date": 1700000001, "text": "Пёс"},
        "channel_post": {"message_id": 2, "date": 1700000000, "chat": channel, "text": "Кот"},
        "edited_channel_post": {"message_id": 2, "date": 1700000000, "chat": channel,
                                "text": "Пёс", "edit_date": 1700000001},
        "my_chat_member": member,
        "chat_member": member,
        "inline_query": {"id": "iq1", "from": sender, "query": "кот", "offset": ""},
        "chosen_inline_result": {"result_id": "r1", "from": sender, "query": "кот"},
        "poll_answer": {"poll_id": "p1", "user": sender, "option_ids": [0],
                        "option_persistent_ids": ["1"]},
        "message_reaction": {"chat": chat, "message_id": 1, "date": 1700000000, "user": sender,
                             "old_reaction": [],
                             "new_reaction": [{"type": "emoji", "emoji": "👍"}]},
        "chat_join_request": {"chat": {"id": case.group, "type": "group", "title": "Г"},
                              "from": sender, "user_chat_id": case.user, "date": 1700000000},
    }[kind]


UNHANDLED = [  # inline_query and chosen_inline_result are handled: tests/test_inline_*.py
    "edited_message", "channel_post", "edited_channel_post", "my_chat_member", "chat_member",
    "poll_answer", "message_reaction", "chat_join_request",
]


@pytest.mark.parametrize("kind", UNHANDLED)
async def test_update_kinds_without_handlers_are_not_asked_for_and_dropped(
    case: Case, kind: str
) -> None:
    api, app = case.api, case.env.app
    api.send_update({kind: unhandled(case, kind)})
    await idle(case.env)
    assert api.updates[-1].dropped  # not in allowed_updates: Telegram would not send it
    update = Update.model_validate(  # and if it did anyway, the dispatcher drops it quietly
        {"update_id": 10_000_000 + case.user, kind: unhandled(case, kind)},
        context={"bot": app.bot},
    )
    await app.dispatcher.feed_update(app.bot, update)
    await case.silent(case.user)
    assert case.stored() == (0, 0, 0) and case.new_errors == 0


# --- text ----------------------------------------------------------------------------------------

ODD_TEXTS: list[tuple[str, str, str, str | None]] = [
    # id, text sent, expected reply (JOKE: a joke starting with the stored prompt), stored prompt
    ("64-chars", "а" * 64, JOKE, "а" * 64),
    ("65-chars", "а" * 65, "не больше 64 символов", None),
    ("5-words", "раз два три четыре пять", JOKE, "раз два три четыре пять"),
    ("6-words", "раз два три четыре пять шесть", "не больше 64 символов и 5 слов", None),
    ("zero-width", "к\u200bо\u200dт\u2060", JOKE, "кот"),
    ("combining", "и\u0306од", JOKE, "йод"),
    ("rtl", "שלום", JOKE, "שלום"),
    ("rtl-override", "\u202eкот\u202c", JOKE, "кот"),
    ("emoji-only", "🤡🤡", "ни одной буквы", None),
    ("mixed-scripts", "кот cat 猫", JOKE, "кот cat 猫"),
    ("html", "<b>кот</b>", JOKE, "<b>кот</b>"),
    ("markdown", "*кот* [x](y)", JOKE, "*кот* [x](y)"),
    ("sql", "'; DROP TABLE jokes; --", JOKE, "'; DROP TABLE jokes; --"),
    ("control", "\x00\x07кот\x1b\x7f", JOKE, "кот"),
    ("32kb", "кот " * 8192, "не больше 64 символов", None),
    ("only-spaces", " \t\u3000 ", "Пришли слово", None),
    ("command-like", "/кот", "Не знаю такой команды", None),
]


@pytest.mark.parametrize(
    ("text", "expected", "prompt"), [c[1:] for c in ODD_TEXTS], ids=[c[0] for c in ODD_TEXTS]
)
async def test_odd_text(case: Case, text: str, expected: str, prompt: str | None) -> None:
    case.api.send_text(case.user, text)
    reply = await case.api.wait_for_bot_message(case.user)
    await idle(case.env)
    assert reply.parse_mode is None  # the user's text is never interpreted as markup
    jokes = case.env.rows("SELECT prompt FROM jokes WHERE chat_id = ?", case.user)
    if expected == JOKE:
        assert prompt is not None and (reply.text or "").startswith(prompt)
        assert jokes == [(prompt,)]
    else:
        assert expected in (reply.text or "") and jokes == []
    assert case.stored()[2] == 0 and case.new_errors == 0


@pytest.mark.parametrize(
    ("raw", "expected", "prompt"),
    [('"\\ud800кот"', JOKE, "кот"), ('"\\ud800"', "Пришли слово", None),
     ('"/start\\udfff"', "Не знаю такой команды", None)],
    ids=["in-a-word", "alone", "in-a-command"],
)
async def test_lone_surrogate_in_json(
    case: Case, raw: str, expected: str, prompt: str | None
) -> None:
    """JSON may carry a lone UTF-16 surrogate ("\\ud800"): valid JSON, not valid UTF-8, so it
    could be neither stored nor sent back; it is dropped like other invisible characters."""
    text = json.loads(raw)  # what aiogram gets from the server's (ASCII-escaped) JSON
    case.api.send_update({"message": {"chat": case.chat(), "from": case.sender(), "text": text}})
    reply = await case.api.wait_for_bot_message(case.user)
    await idle(case.env)
    jokes = case.env.rows("SELECT prompt FROM jokes WHERE chat_id = ?", case.user)
    if expected == JOKE:
        assert (reply.text or "").startswith(prompt or "?") and jokes == [(prompt,)]
    else:
        assert expected in (reply.text or "") and jokes == []
    assert case.new_errors == 0


# --- buttons ----------------------------------------------------------------------------------

FORGED = [
    "", "x" * 1000, "v", "v:1", "v:1:1:1", "v:abc:1", "v:1:0", "v:1:5", "v:0:1", "v:-1:1",
    "v:99999999999999999999999:1", "m:99999999999999999999999", "m:abc", "s:" + "x" * 200,
    "r:" + "x" * 200, "r:nosuchtoken", "s:nosuchmethod", "\ud800", "v:١:1x",
]


@pytest.mark.parametrize("data", FORGED, ids=[f"{n}-{d[:12]!a}" for n, d in enumerate(FORGED)])
async def test_forged_callback_data_gets_alert_and_changes_nothing(case: Case, data: str) -> None:
    api = case.api
    api.send_text(case.user, "Кот")
    joke = await api.wait_for_bot_message(case.user)
    await idle(case.env)
    before = case.stored()
    query = api.press_button(case.user, joke.message_id, data, strict=False)
    answer = await api.wait_for_callback_answer(query)
    assert answer.show_alert and answer.text
    await idle(case.env)
    assert case.stored() == before and case.new_errors == 0
