"""The one path from a starting word to a rated joke in a chat.

Handlers for text, /joke, mentions, 🔁 and retries all end here, so the order of effects is the
same everywhere: generate (showing "typing…"), store the joke, send it, remember its message id.
If sending fails the stored joke is removed again, so nothing half-written stays behind.

Remembering the message id runs after the handler has returned (`note_message`): the user has
the joke by then and must not be told "уже пишу…" while a busy database takes its time with a
piece of bookkeeping (under load some were: docs/BENCHMARKS.md §6). The app waits for these
writes when it shuts down (`finish_bookkeeping`).

Every failure ends in a sentence to the user, never in silence: the model failed or timed out
(an apology with a 🔁 button), the queue is full, the bot is shutting down, or the joke could not
be stored. The "typing…" indicator is best effort and never fails a joke.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import replace

from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage
from bot import texts
from bot.arms import Arms, stored_fields
from bot.classic import ClassicShelf, shown_text
from bot.incidents import StorageIncidents
from bot.keyboards import joke_keyboard, retry_keyboard
from bot.resilience import telegram_refused
from bot.shared_jokes import ShareLinks
from bot.shared_state import MemoryState, SharedState
from generation.registry import MethodRegistry
from generation.service import GenerationService
from generation.types import GenerationBusy, GenerationError, GenerationRequest, Joke, NothingFound

log = logging.getLogger(__name__)

VARIANTS_TTL_S = 24 * 3600  # a 🔁 cursor is forgotten a day after its last press


class RetryTokens:
    """Remembers recent failed requests so the "🔁 Ещё раз" button can repeat them.

    Telegram allows 64 bytes of callback data, too few for a Cyrillic phrase, so the button
    carries a short random token instead; the oldest tokens are forgotten first.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, tuple[str, str]] = OrderedDict()

    def put(self, prompt: str, method: str) -> str:
        token = secrets.token_urlsafe(8)
        self._items[token] = (prompt, method)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return token

    def get(self, token: str) -> tuple[str, str] | None:
        return self._items.get(token)


class Variants:
    """Counts 🔁 presses per chat, word and method, so "another joke" is really another one.

    For deterministic methods (beam search) the request's seed selects the n-th best beam; for
    sampling methods no seed is given, so each press draws afresh. Memory is bounded; with
    several replicas the counts live in the shared state (bot/shared_state.py).
    """

    def __init__(
        self, registry: MethodRegistry, capacity: int = 10_000, shared: SharedState | None = None
    ) -> None:
        self.registry = registry
        self.state = shared or MemoryState(capacity=capacity)

    async def next(self, chat_id: int, prompt: str, method: str) -> int | None:
        if method not in self.registry or not self.registry.method(method).deterministic:
            return None
        key = f"variant:{chat_id}:{method}:{prompt.casefold()}"
        return await self.state.next_count(key, VARIANTS_TTL_S)


class Drafts:
    """The unshown candidates of each chat's last draw per word and method, best first.

    Best of N ranks a whole draw; the first joke is sent and 🔁 Ещё sends the next one from here
    without generating again. A new draw for the same word replaces what was left. Bounded.
    """

    def __init__(self, capacity: int = 10_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[int, str, str], list[Joke]] = OrderedDict()

    def keep(self, chat_id: int, prompt: str, method: str, jokes: list[Joke]) -> None:
        key = (chat_id, prompt.casefold(), method)
        self._items.pop(key, None)
        if jokes:
            self._items[key] = list(jokes)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def take(self, chat_id: int, prompt: str, method: str) -> Joke | None:
        """The next unshown joke of the last draw, or None when the draw is used up."""
        left = self._items.get((chat_id, prompt.casefold(), method))
        if not left:
            return None
        joke = left.pop(0)
        if not left:
            del self._items[(chat_id, prompt.casefold(), method)]
        return replace(joke, latency_ms=0.0)


class JokeTeller:
    def __init__(
        self,
        *,
        service: GenerationService,
        registry: MethodRegistry,
        sessionmaker: async_sessionmaker[AsyncSession],
        default_method: str,
        incidents: StorageIncidents | None = None,
        shared: SharedState | None = None,
        share_links: ShareLinks,
    ) -> None:
        self.service = service
        self.share_links = share_links  # the 📤 button's signed reference
        self.incidents = incidents or StorageIncidents()
        self.registry = registry
        self.sessionmaker = sessionmaker
        self.default_method = default_method
        self.retry_tokens = RetryTokens()
        self.variants = Variants(registry, shared=shared)  # 🔁 cursors, shared by replicas
        self.drafts = Drafts()
        self.arms = Arms(service, registry)  # an experiment's versions (bot/arms.py)
        self.classic = ClassicShelf(  # «📚 Из сборника»: what the user has seen (bot/classic.py)
            sessionmaker=sessionmaker,
            registry=registry,
            default_method=default_method,
            retry_tokens=self.retry_tokens,
        )
        self._bookkeeping: set[asyncio.Task[None]] = set()

    def method_names(self) -> list[str]:
        return [m.name for m in self.registry.methods()]

    def resolve_method(self, stored: str | None) -> str | None:
        """The user's method if it still exists, else the default, else the first registered."""
        names = self.method_names()
        for candidate in (stored, self.default_method):
            if candidate in names:
                return candidate
        return names[0] if names else None

    def display_name(self, method: str) -> str:
        for info in self.registry.methods():
            if info.name == method:
                return info.display_name
        return method

    async def user_method(self, session: AsyncSession, user_id: int) -> str | None:
        return self.resolve_method(await storage.get_user_method(session, user_id))

    async def tell(
        self,
        bot: Bot,
        *,
        chat_id: int,
        user_id: int,
        prompt: str,
        method: str | None,
        reply_to: int | None = None,
        another: bool = False,
    ) -> int | None:
        """Write and send one joke; returns its stored id, or None if the user got an apology.

        another: the user asked for one more joke on this word (🔁): the next candidate of the
        last draw if one is left; else a new draw (beam search without best of N: the next-best
        beam, since it would repeat itself).
        """
        method = self.resolve_method(method)
        if method is None:
            await bot.send_message(chat_id, texts.NO_METHODS, reply_to_message_id=reply_to)
            return None
        joke = self.drafts.take(chat_id, prompt, method) if another else None
        if joke is None:
            joke = await self._draw(bot, chat_id, user_id, prompt, method, reply_to, another)
            if joke is None:
                return None
        return await self._store_and_send(
            bot, joke, chat_id=chat_id, user_id=user_id, prompt=prompt, reply_to=reply_to
        )

    async def _draw(
        self,
        bot: Bot,
        chat_id: int,
        user_id: int,
        prompt: str,
        method: str,
        reply_to: int | None,
        another: bool,
    ) -> Joke | None:
        """Generate a draw: keep its runners-up for 🔁 and return the best, or tell the user
        why there is none (and return None)."""
        try:
            async with typing(bot, chat_id):
                seed = None
                if another and not self.service.best_of_n:
                    seed = await self.variants.next(chat_id, prompt, method)
                exclude = await self.classic.shown(user_id, method)
                request = GenerationRequest(prompt, method, seed=seed, exclude=exclude)
                jokes = await self.arms.generate(request, user_id)
        except GenerationBusy:
            await bot.send_message(chat_id, texts.BUSY, reply_to_message_id=reply_to)
            return None
        except NothingFound:  # an answer, not a failure: no apology, no 🔁 of the same
            await self.classic.say_nothing(bot, chat_id, prompt, reply_to)
            return None
        except GenerationError as exc:
            if not self.service.running:  # stopping: a 🔁 token would not survive the restart
                log.info("generation for chat %d stopped by the shutdown", chat_id)
                await bot.send_message(chat_id, texts.RESTARTING, reply_to_message_id=reply_to)
                return None
            log.warning("generation failed for method %s: %s", method, exc)
            token = self.retry_tokens.put(prompt, method)
            await bot.send_message(
                chat_id,
                texts.GENERATION_FAILED,
                reply_markup=retry_keyboard(token),
                reply_to_message_id=reply_to,
            )
            return None
        self.drafts.keep(chat_id, prompt, method, jokes[1:])
        return jokes[0]

    async def _store_and_send(
        self,
        bot: Bot,
        joke: Joke,
        *,
        chat_id: int,
        user_id: int,
        prompt: str,
        reply_to: int | None,
    ) -> int | None:
        try:
            async with self.sessionmaker() as session:
                joke_id = await storage.save_joke(
                    session,
                    user_id=user_id,
                    chat_id=chat_id,
                    prompt=prompt,
                    **stored_fields(joke),
                )
        except storage.StorageError as error:
            # unsaved, a joke's buttons would lead nowhere: say so instead of sending it
            self.incidents.failed("store a joke", error)
            await bot.send_message(chat_id, texts.SAVE_FAILED, reply_to_message_id=reply_to)
            return None
        self.incidents.succeeded()
        try:
            message = await bot.send_message(
                chat_id,
                shown_text(joke),
                reply_markup=joke_keyboard(
                    joke_id, 0, 0, self.display_name(joke.method), self.share_links
                ),
                reply_to_message_id=reply_to,
            )
        except BaseException as error:
            # A copy may have reached the user unless Telegram refused the message: keep the joke
            # then, so that every copy's buttons find it (votes key on the joke, not the message).
            if telegram_refused(error):
                with contextlib.suppress(storage.StorageError):
                    async with self.sessionmaker() as session:
                        await storage.delete_joke(session, joke_id)
            raise
        task = asyncio.create_task(self.note_message(joke_id, chat_id, message.message_id))
        self._bookkeeping.add(task)
        task.add_done_callback(self._bookkeeping.discard)
        return joke_id

    async def note_message(self, joke_id: int, chat_id: int, message_id: int) -> None:
        """Store which message shows joke `joke_id`; a failure is logged, never raised (the
        joke and its votes work without it)."""
        try:
            async with self.sessionmaker() as session:
                await storage.attach_message(session, joke_id, chat_id, message_id)
        except Exception as exc:
            log.warning("could not note the message of joke %d: %s", joke_id, exc)

    async def finish_bookkeeping(self, timeout: float) -> None:
        """Wait up to `timeout` seconds for the message ids still being stored (at shutdown)."""
        if self._bookkeeping:
            await asyncio.wait(set(self._bookkeeping), timeout=timeout)


TYPING_EVERY_S = 4.5  # Telegram shows "typing…" for 5 s


@contextlib.asynccontextmanager
async def typing(bot: Bot, chat_id: int) -> AsyncIterator[None]:
    """Show "typing…" until the block ends. Failures to send it are ignored (aiogram's
    ChatActionSender would leave a task with an unretrieved exception behind)."""

    async def keep_typing() -> None:
        while True:
            try:
                await bot.send_chat_action(chat_id, "typing")
            except Exception as exc:  # cosmetic: never worth failing a joke over
                log.debug("typing indicator failed: %s", type(exc).__name__)
            await asyncio.sleep(TYPING_EVERY_S)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
