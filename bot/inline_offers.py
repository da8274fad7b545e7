"""What inline mode offers: the jokes of one answer as Telegram results, and a short memory of
recent answers.

Why a memory next to Telegram's own cache (`cache_time`): Telegram keys its cache on the exact
query text, so «Молоко», «Молоко » and «молоко» are three queries, each a model call and three
stored jokes; and a client that reopens the inline panel asks again. The memory keys on the
user, their method and the starting word as the bot reads it, and keeps an answer for the same
few seconds Telegram is told to. A joke that was picked is forgotten at once, so the next query
offers fresh ones instead of a joke already posted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiogram.types import InlineQueryResultArticle, InputTextMessageContent

from bot import texts
from bot.keyboards import inline_joke_keyboard
from bot.shared_jokes import ShareLinks

#: at most this many jokes offered for one query (Telegram shows them in a row of results)
OFFER_SIZE = 3


@dataclass(frozen=True, slots=True)
class OfferedItem:
    joke_id: int
    text: str
    method: str  # the name shown (display name)
    likes: int = 0
    dislikes: int = 0


@dataclass(frozen=True, slots=True)
class Offer:
    """One inline answer: the starting word and the jokes, best first."""

    prompt: str
    items: tuple[OfferedItem, ...]


def offer_results(
    offer: Offer, links: ShareLinks, *, title: str = texts.INLINE_RESULT_TITLE
) -> list[InlineQueryResultArticle]:
    """Telegram results for an offer: the joke id is the result id and is in the buttons (📤
    signed by `links`); the title names who wrote the joke, the description shows the joke."""
    return [
        InlineQueryResultArticle(
            id=str(item.joke_id),
            title=title.format(method=item.method, place=place),
            description=item.text,
            input_message_content=InputTextMessageContent(message_text=item.text),
            reply_markup=inline_joke_keyboard(
                item.joke_id, item.likes, item.dislikes, offer.prompt, links
            ),
        )
        for place, item in enumerate(offer.items, start=1)
    ]


class OfferCache:
    """Recent offers by (user, method, starting word), each kept `max_age` seconds; bounded."""

    def __init__(
        self, capacity: int = 2_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.capacity = capacity
        self.clock = clock
        self._items: OrderedDict[tuple[int, str, str], tuple[float, Offer]] = OrderedDict()

    @staticmethod
    def key(user_id: int, method: str, prompt: str) -> tuple[int, str, str]:
        return user_id, method, prompt.casefold()

    def get(self, user_id: int, method: str, prompt: str, max_age: float) -> Offer | None:
        key = self.key(user_id, method, prompt)
        found = self._items.get(key)
        if found is None:
            return None
        stored_at, offer = found
        if max_age <= 0 or self.clock() - stored_at > max_age:
            del self._items[key]
            return None
        return offer

    def put(self, user_id: int, method: str, offer: Offer) -> None:
        key = self.key(user_id, method, offer.prompt)
        self._items.pop(key, None)
        self._items[key] = (self.clock(), offer)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def forget_joke(self, user_id: int, joke_id: int) -> None:
        """Drop the user's offers that hold this joke (it was picked)."""
        stale = [
            key
            for key, (_, offer) in self._items.items()
            if key[0] == user_id and any(item.joke_id == joke_id for item in offer.items)
        ]
        for key in stale:
            del self._items[key]


def distinct_texts(texts_: Sequence[str], limit: int = OFFER_SIZE) -> list[int]:
    """Indices of the first `limit` texts that differ from the ones before (case-insensitive):
    three copies of one joke are not a choice."""
    seen: set[str] = set()
    chosen: list[int] = []
    for index, text in enumerate(texts_):
        folded = " ".join(text.casefold().split())
        if folded in seen:
            continue
        seen.add(folded)
        chosen.append(index)
        if len(chosen) == limit:
            break
    return chosen
