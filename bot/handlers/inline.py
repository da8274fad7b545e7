"""Inline mode: `@bot Молоко` typed in any chat offers up to three fresh jokes; the one picked is
posted there with 👍/👎, and votes on it count like any other (bot/handlers/votes.py).

What is offered: the best three of one draw of the user's method (chosen with /method, else the
default). Best of N ranks a whole draw anyway, so three jokes cost what one costs in a chat: one
model call, which matters because Telegram asks again as the user types. One joke per method
would triple that, make every answer wait for the slowest model, and ignore the user's choice of
method. Each result's title names the method that wrote it.

Handlers are tried in order, and only the last one writes, so the cheap answers never count
against the user's limits:
1. a share query `j<id>_<sig>` (the 📤 button types it) offers that stored joke; anything
   shaped like one but not signed by this bot (`bot/shared_jokes.py`) gets the missing-joke
   hint, so a guessed `j12` neither reads a joke nor starts a draw;
2. an empty, over-long, letterless or markup query gets a hint (`bot/inline_replies.py`);
3. an answer given a few seconds ago for the same word is given again (`bot/inline_offers.py`);
4. otherwise jokes are drawn, under the same limits as in chats: one request in flight and a rate
   per user (`GenerationGuardMiddleware`, which answers an inline query with a hint), and the
   service's admission ("busy", `generation/admission.py`), answered with a hint as well. The
   jokes are stored as offered (`storage/inline.py`) before the answer goes out.

A pick is a rating too: with inline feedback on (BotFather, /setinlinefeedback) Telegram reports
which result was posted (`chosen_inline_result`), and the joke is marked chosen.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass

from aiogram import F, Router
from aiogram.types import ChosenInlineResult, InlineQuery
from sqlalchemy.ext.asyncio import AsyncSession

import storage
from bot import texts
from bot.arms import stored_fields
from bot.inline_offers import OFFER_SIZE, Offer, OfferCache, OfferedItem, distinct_texts
from bot.inline_offers import offer_results as results_of
from bot.inline_replies import STATIC_HINT_CACHE_S, answer_hint, answer_inline
from bot.joke_teller import JokeTeller
from bot.shared_jokes import ShareLinks, looks_like_ref
from bot.validation import check_prompt, clean_prompt
from generation.types import GenerationBusy, GenerationError, GenerationRequest, Joke
from settings import Settings

log = logging.getLogger(__name__)

GENERATION = {"generation": True}
#: Telegram takes an inline answer for about ten seconds; a later one is lost, so a draw that
#: has not finished by then is abandoned (the service drops it if it has not started)
INLINE_ANSWER_S = 8.0
#: HTML or XML tags and character references: a query is a starting word, never markup
_MARKUP = re.compile(r"<\s*/?\s*[A-Za-z!?][^>]*>|&#?[A-Za-z0-9]+;")
_JOKE_ID = re.compile(r"[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class Hint:
    title: str
    description: str = ""
    cache_time: int = 0


def query_hint(query: InlineQuery, settings: Settings) -> dict[str, Hint] | bool:
    """Filter: {"hint": ...} for a query that cannot be a starting word, else False."""
    raw = query.query
    if _MARKUP.search(raw):
        hint = Hint(texts.INLINE_MARKUP, texts.INLINE_MARKUP_DESCRIPTION, STATIC_HINT_CACHE_S)
        return {"hint": hint}
    check = check_prompt(
        raw, max_chars=settings.max_prompt_chars, max_words=settings.max_prompt_words
    )
    if check.prompt is not None:
        return False
    if check.error == texts.EMPTY_TEXT:
        hint = Hint(texts.INLINE_EMPTY, texts.INLINE_EMPTY_DESCRIPTION, STATIC_HINT_CACHE_S)
    elif check.error == texts.NO_LETTERS:
        hint = Hint(texts.INLINE_NO_LETTERS, texts.NO_LETTERS, STATIC_HINT_CACHE_S)
    else:
        hint = Hint(texts.INLINE_TOO_LONG, check.error or "", STATIC_HINT_CACHE_S)
    return {"hint": hint}


def chosen_joke_id(result_id: str) -> int | None:
    """The joke id a picked result names (a hint's id names none)."""
    if not _JOKE_ID.fullmatch(result_id):
        return None
    joke_id = int(result_id)
    return joke_id if joke_id < 2**63 else None


def _offered(joke: Joke) -> storage.OfferedJoke:
    return storage.OfferedJoke(**stored_fields(joke))


class InlineMode:
    """The inline handlers of one dispatcher and their memory of recent answers."""

    def __init__(self) -> None:
        self.offers = OfferCache()

    async def hint(self, query: InlineQuery, hint: Hint) -> None:
        await answer_hint(query, hint.title, hint.description, cache_time=hint.cache_time)

    async def share(
        self,
        query: InlineQuery,
        session: AsyncSession,
        teller: JokeTeller,
        settings: Settings,
        share_links: ShareLinks,
    ) -> None:
        """The joke a 📤 button names, ready to post with its current counts; a reference this
        bot did not sign is answered like a missing joke."""
        joke_id = share_links.parse(query.query)
        try:
            card = None if joke_id is None else await storage.joke_by_id(session, joke_id)
        except storage.StorageError as error:
            teller.incidents.failed(f"read joke {joke_id}", error)
            await answer_hint(query, texts.DATABASE_BUSY)
            return
        if card is None:
            await answer_hint(query, texts.INLINE_NOT_FOUND, texts.INLINE_NOT_FOUND_DESCRIPTION)
            return
        item = OfferedItem(
            card.id, card.text, teller.display_name(card.method), card.likes, card.dislikes
        )
        offer = Offer(card.prompt, (item,))
        results = results_of(offer, share_links, title=texts.INLINE_SHARED_TITLE)
        await answer_inline(query, results, cache_time=settings.inline_cache_s)

    async def cached_offer(
        self,
        query: InlineQuery,
        session: AsyncSession,
        teller: JokeTeller,
        settings: Settings,
    ) -> dict[str, Offer] | bool:
        """Filter: {"offer": ...} when this user got an answer for this word moments ago."""
        try:
            method = await teller.user_method(session, query.from_user.id)
        except storage.StorageError:
            return False  # the drawing handler says so
        if method is None:
            return False
        prompt = clean_prompt(query.query)
        offer = self.offers.get(query.from_user.id, method, prompt, settings.inline_cache_s)
        return {"offer": offer} if offer is not None else False

    async def serve_cached(
        self, query: InlineQuery, offer: Offer, settings: Settings, share_links: ShareLinks
    ) -> None:
        results = results_of(offer, share_links)
        await answer_inline(query, results, cache_time=settings.inline_cache_s)

    async def offer_jokes(
        self,
        query: InlineQuery,
        session: AsyncSession,
        teller: JokeTeller,
        settings: Settings,
        share_links: ShareLinks,
    ) -> None:
        """Draw, store as offered, answer; every failure ends in a hint."""
        user_id = query.from_user.id
        prompt = clean_prompt(query.query)
        try:
            method = await teller.user_method(session, user_id)
        except storage.StorageError as error:
            teller.incidents.failed("read the user's method", error)
            await answer_hint(query, texts.DATABASE_BUSY)
            return
        await session.close()  # generation takes a while: hold no connection meanwhile
        if method is None:
            await answer_hint(query, texts.NO_METHODS)
            return
        jokes = await self._draw(query, teller, settings, prompt, method)
        if not jokes:
            return
        jokes = [jokes[i] for i in distinct_texts([joke.text for joke in jokes], OFFER_SIZE)]
        try:
            async with teller.sessionmaker() as writer:
                ids = await storage.save_offer(
                    writer, user_id=user_id, prompt=prompt, jokes=[_offered(j) for j in jokes]
                )
        except storage.StorageError as error:
            teller.incidents.failed("store the offered jokes", error)
            await answer_hint(query, texts.INLINE_SAVE_FAILED, texts.SAVE_FAILED)
            return
        teller.incidents.succeeded()
        items = tuple(
            OfferedItem(joke_id, joke.text, teller.display_name(joke.method))
            for joke_id, joke in zip(ids, jokes, strict=True)
        )
        offer = Offer(prompt, items)
        self.offers.put(user_id, method, offer)
        results = results_of(offer, share_links)
        await answer_inline(query, results, cache_time=settings.inline_cache_s)

    async def _draw(
        self,
        query: InlineQuery,
        teller: JokeTeller,
        settings: Settings,
        prompt: str,
        method: str,
    ) -> list[Joke] | None:
        """The draw's jokes best first, or None after answering why there are none."""
        request = GenerationRequest(prompt=prompt, method=method, count=OFFER_SIZE)
        deadline = min(settings.generation_timeout_s, INLINE_ANSWER_S)
        try:
            return await asyncio.wait_for(
                teller.arms.generate(request, query.from_user.id), deadline
            )
        except GenerationBusy:
            await answer_hint(query, texts.INLINE_BUSY, texts.INLINE_BUSY_DESCRIPTION)
        except (GenerationError, TimeoutError) as error:
            log.info("inline draw for %r failed: %r", method, error)
            await answer_hint(query, texts.INLINE_FAILED, texts.INLINE_RETRY)
        return None

    async def chosen(
        self,
        result: ChosenInlineResult,
        joke_id: int,
        session: AsyncSession,
        teller: JokeTeller,
    ) -> None:
        """Mark the picked joke (and where it was posted); a pick that names no joke offered
        to this user (a hint, a shared joke, a forged report) changes nothing."""
        try:
            marked = await storage.mark_inline_chosen(
                session,
                joke_id,
                inline_message_id=result.inline_message_id,
                user_id=result.from_user.id,
            )
        except storage.StorageError as error:
            teller.incidents.failed("mark the chosen joke", error)
            return
        teller.incidents.succeeded()
        if marked:
            self.offers.forget_joke(result.from_user.id, joke_id)
        else:
            log.info("chosen inline result %s changed nothing", result.result_id)


def build_router() -> Router:
    mode = InlineMode()
    router = Router(name="inline")
    router.inline_query.register(mode.share, F.query.func(looks_like_ref))
    router.inline_query.register(mode.hint, query_hint)
    router.inline_query.register(mode.serve_cached, mode.cached_offer)
    router.inline_query.register(mode.offer_jokes, flags=GENERATION)
    router.chosen_inline_result.register(
        mode.chosen, F.result_id.func(chosen_joke_id).as_("joke_id")
    )
    return router


__all__ = ["INLINE_ANSWER_S", "Hint", "InlineMode", "build_router", "chosen_joke_id", "query_hint"]
