"""The checks of `bench.scale`, against PostgreSQL and what the local Bot API server saw.

* Votes: for every (user, joke) whose presses were all answered, the stored vote is what the last
  answer said ("Спасибо!" for the pressed value, "Оценка снята" for none). A thanked vote missing
  is *lost*; a vote stored where none was acknowledged, or the other value, means a toggle was
  applied twice (or lost). Pairs with an unanswered press are left out and counted.
* No update applied twice: no callback query answered twice, no chat with more bot messages than
  the words and 🔁 presses its user sent, and no joke message sent twice (two stored jokes with
  the same message).
* Every user got an answer (a joke, an apology with 🔁, or "busy"): overall, and, in a run with
  a kill, among the words sent after it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench.scale_users import ANSWER_KINDS, Ask, Tally
from bench.soak import VOTE_TEXTS, Press
from bot import texts
from local_telegram import LocalBotApi
from tests.servers import pg_rows


def check_votes(database_url: str, presses: list[Press]) -> dict[str, int]:
    by_pair: dict[tuple[int, int], list[Press]] = {}
    for press in presses:
        by_pair.setdefault((press.user, press.joke_id), []).append(press)
    stored = {
        (int(u), int(j)): int(v)  # type: ignore[call-overload]
        for u, j, v in pg_rows(database_url, "SELECT user_id, joke_id, value FROM votes")
    }
    result: Counter[str] = Counter()
    for pair, items in by_pair.items():
        if any(p.answer not in VOTE_TEXTS for p in items):
            result["pairs with an unanswered press (left out)"] += 1
            continue
        last = items[-1]
        expected = last.value if last.answer == texts.VOTE_THANKS else None
        got = stored.get(pair)
        result["pairs checked"] += 1
        if expected is not None:
            result["votes thanked"] += 1
            result["of them stored"] += got == expected
        if got == expected:
            continue
        if expected is not None and got is None:
            result["LOST: thanked, not stored"] += 1
        else:
            result["APPLIED TWICE: stored other than acknowledged"] += 1
    return dict(result)


def check_once(api: LocalBotApi, database_url: str, tally: Tally) -> dict[str, int]:
    """Evidence that no update was applied twice (see the module's docstring)."""
    answers = Counter(
        str(c.params.get("callback_query_id")) for c in api.calls_of("answerCallbackQuery")
    )
    asks = Counter(a.user for a in tally.asks)
    too_many = sum(
        1 for uid, n in asks.items() if len(api.bot_messages(uid)) > n
    )
    sent_twice = pg_rows(
        database_url,
        "SELECT chat_id, message_id FROM jokes WHERE message_id IS NOT NULL "
        "GROUP BY chat_id, message_id HAVING COUNT(*) > 1",
    )
    accepted = Counter(d.update_id for d in api.webhooks.deliveries if d.error is None)
    return {
        "updates": len(api.updates),
        "updates delivered (2xx) more than once": sum(1 for n in accepted.values() if n > 1),
        "UPDATES NOT CONFIRMED AT THE END": len(api.pending),
        "APPLIED TWICE: callback queries answered twice": sum(
            1 for n in answers.values() if n > 1
        ),
        "APPLIED TWICE: chats with more replies than asks": too_many,
        "APPLIED TWICE: joke messages stored twice": len(sent_twice),
    }


def check_answers(tally: Tally, killed_at: float | None) -> dict[str, Any]:
    """Who got an answer; after a kill, who got one to a word sent after it."""
    users = {a.user for a in tally.asks}
    answered = {a.user for a in tally.asks if a.kind in ANSWER_KINDS}
    result: dict[str, Any] = {
        "users": len(users),
        "USERS WITHOUT AN ANSWER": len(users - answered),
        "asks without a reply": sum(1 for a in tally.asks if a.kind is None),
    }
    if killed_at is not None:
        after = [a for a in tally.asks if a.sent_at >= killed_at]
        asked = {a.user for a in after}
        got = {a.user for a in after if a.kind in ANSWER_KINDS}
        result.update(
            {
                "users asking after the kill": len(asked),
                "USERS WITHOUT AN ANSWER AFTER THE KILL": len(asked - got),
                "users told «уже пишу…» after the kill": len(
                    {a.user for a in after if a.kind == "уже пишу…"}
                ),
                "asks sent before the kill, never answered": sum(
                    1 for a in tally.asks
                    if a.sent_at < killed_at and a.kind is None
                ),
            }
        )  # fmt: skip
    return result


def stored_jokes(database_url: str) -> dict[str, int]:
    ((total, unsent),) = pg_rows(
        database_url, "SELECT COUNT(*), COUNT(*) FILTER (WHERE message_id IS NULL) FROM jokes"
    )
    return {"jokes stored": int(total), "of them never sent": int(unsent)}  # type: ignore[call-overload]


def failures(*checks: dict[str, Any]) -> list[str]:
    """The upper-case keys (the failures) that are not zero."""
    return [
        f"{key}: {value}"
        for check in checks
        for key, value in check.items()
        if key.split(":")[0].isupper() and value
    ]


def answer_seconds(asks: list[Ask]) -> list[float]:
    return [s for a in asks if a.kind in ANSWER_KINDS and (s := a.seconds) is not None]
