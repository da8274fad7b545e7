"""Running the bot: wiring storage, generation and Telegram together, and stopping cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.methods import GetUpdates
from aiogram.types import BotCommand
from aiogram.utils.backoff import Backoff, BackoffConfig
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.assembly import (
    make_bot,
    make_tracker,
    open_storage,
    settings_backoff,
    start_generation,
    start_remote_generation,
)
from bot.dispatcher import build_dispatcher
from bot.errors import ErrorReporter
from bot.resilience import RetryMiddleware, brief, polling_backoff
from bot.startup_gc import resume_collection
from bot.updates import OffsetFile, UpdateTracker
from generation.registry import MethodRegistry, build_registry
from generation.selection import Selector
from generation.service import GenerationService
from settings import Settings
from storage.db import sqlite_file

log = logging.getLogger(__name__)

APOLOGY_S = 3.0  # after the grace period: time to tell users their joke was not finished
CONFIRM_TIMEOUT_S = 3.0

COMMANDS = [
    BotCommand(command="start", description="Что умеет бот"),
    BotCommand(command="help", description="Справка и пример"),
    BotCommand(command="method", description="Кто пишет анекдоты"),
    BotCommand(command="top", description="Лучшие анекдоты"),
    BotCommand(command="liked", description="Мои понравившиеся анекдоты"),
    BotCommand(command="stats", description="Статистика по моделям"),
    BotCommand(command="joke", description="Анекдот по слову: /joke Молоко"),
]


@dataclass
class BotApp:
    """Everything a running bot holds, so that tests can start and stop it like `python -m bot`.

    Life cycle: `run_polling()` until SIGTERM/SIGINT or `stop()`, then `close()` (always).
    Webhook mode (bot/webhook.py) serves instead of polling, with `webhook_mode` set.
    """

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    registry: MethodRegistry
    service: GenerationService
    bot: Bot
    dispatcher: Dispatcher
    backoff: BackoffConfig = field(default_factory=polling_backoff)
    offset_file: OffsetFile | None = None
    webhook_mode: bool = False  # Telegram forgets what the webhook answered: no offset to confirm
    _stop_requested: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _closed: bool = field(default=False, init=False)

    @property
    def tracker(self) -> UpdateTracker:
        return self.dispatcher["update_tracker"]  # type: ignore[no-any-return]

    @property
    def errors(self) -> ErrorReporter:
        return self.dispatcher["error_reporter"]  # type: ignore[no-any-return]

    @property
    def retry(self) -> RetryMiddleware:
        return next(m for m in self.bot.session.middleware if isinstance(m, RetryMiddleware))

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        """Poll until stopped. SIGTERM/SIGINT (or `stop()`) stop taking new updates; `close()`
        then finishes what is in flight."""
        if handle_signals:
            self.listen_for_signals()
        # started (models loaded): collect again before a Telegram outage can make us wait here
        resume_collection()  # see bot/startup_gc.py
        if not await self.start_up():
            return
        polling = asyncio.create_task(
            self.dispatcher.start_polling(
                self.bot,
                handle_signals=False,
                close_bot_session=False,
                polling_timeout=self.settings.polling_timeout_s,
                backoff_config=self.backoff,
            )
        )
        stopper = asyncio.create_task(self._stop_requested.wait())
        try:
            await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not polling.done():
                try:
                    await self.dispatcher.stop_polling()
                except RuntimeError:  # polling had not started yet
                    polling.cancel()
                await asyncio.wait({polling})
            if not polling.cancelled() and polling.exception() is not None:
                raise polling.exception()  # type: ignore[misc]
        finally:
            stopper.cancel()

    def listen_for_signals(self) -> None:
        """SIGTERM/SIGINT stop taking new updates, as `stop()` does."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    async def wait_for_stop(self) -> None:
        await self._stop_requested.wait()

    def _on_signal(self, sig: signal.Signals) -> None:
        if self._stop_requested.is_set():
            log.warning("received %s again; still finishing the work in flight", sig.name)
            return
        log.warning("received %s: stopping", sig.name)
        self._stop_requested.set()

    async def stop(self) -> None:
        """Stop taking new updates (what is in flight goes on; `close()` waits for it)."""
        self._stop_requested.set()

    async def start_up(self, set_webhook: Callable[[], Awaitable[object]] | None = None) -> bool:
        """Reach Telegram (retrying while it is down), have updates sent here (polling: delete
        any webhook; else `set_webhook()`, whose failure is fatal) and set up commands; False if
        stopped meanwhile. A rejected token is fatal (TelegramUnauthorizedError propagates)."""
        backoff = Backoff(self.backoff)
        while not self._stop_requested.is_set():
            try:
                await self.bot.me()  # cached by aiogram: the polling loop will not ask again
                break
            except TelegramUnauthorizedError:
                raise
            except Exception as exc:
                delay = next(backoff)
                log.warning("cannot reach Telegram (%s); retry in %.1f s", brief(exc), delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), delay)
        if self._stop_requested.is_set():
            return False
        steps = [("set the command list", lambda: self.bot.set_my_commands(COMMANDS))]
        if set_webhook is not None:
            await set_webhook()
        else:
            delete = self.bot.delete_webhook
            steps.insert(0, ("delete the webhook", lambda: delete(drop_pending_updates=False)))
        for what, call in steps:
            try:
                await call()
            except Exception as exc:  # not worth failing the start over
                log.warning("could not %s: %s", what, brief(exc))
        return True

    async def close(self) -> None:
        """Finish what is in flight within the grace period, then release everything.

        1. Updates in flight get `shutdown_grace_s` to finish (the model keeps working).
        2. Generations still running are failed; their handlers apologise (a short extra wait).
        3. What is still running after that is cancelled.
        4. The message ids still being stored after replies get `APOLOGY_S` (bot/joke_teller.py).
        5. The handled updates are confirmed to Telegram and noted in the offset file, so a
           restart does not handle them again (see `bot.updates`).
        """
        if self._closed:
            return
        self._closed = True
        grace = self.settings.shutdown_grace_s
        in_flight = set(self.dispatcher._handle_update_tasks)
        if in_flight:
            log.info("waiting up to %.1f s for %d update(s) in flight", grace, len(in_flight))
            _, in_flight = await asyncio.wait(in_flight, timeout=grace)
        await self.service.stop(grace_s=0 if in_flight else grace)
        if in_flight:
            log.warning("%d update(s) still running: generations stopped", len(in_flight))
            _, in_flight = await asyncio.wait(in_flight, timeout=APOLOGY_S)
        if in_flight:
            log.warning("cancelling %d update(s) still running", len(in_flight))
            for task in in_flight:
                task.cancel()
            await asyncio.wait(in_flight, timeout=APOLOGY_S)
        teller = self.dispatcher.get("teller")
        if teller is not None:
            await teller.finish_bookkeeping(APOLOGY_S)
        try:
            await self._confirm_updates()
        finally:
            await self.bot.session.close()
            await self.engine.dispose()
            shared = self.dispatcher.get("shared_state")
            if shared is not None:  # the Redis connection pool, when REDIS_URL is set
                await shared.close()

    async def _confirm_updates(self) -> None:
        tracker = self.tracker
        if tracker.last_update_id is None or self.webhook_mode:  # keep the old note as it was
            if tracker.floor and self.offset_file is not None:
                self.offset_file.save(tracker.floor, keep_date=True)
            return
        last = max(tracker.last_update_id, tracker.floor)
        if self.offset_file is not None:
            self.offset_file.save(last)
        try:
            await asyncio.wait_for(
                self.bot(GetUpdates(offset=last + 1, timeout=0, limit=1)), CONFIRM_TIMEOUT_S
            )
            log.info("confirmed updates up to %d", last)
        except Exception as exc:
            log.warning(
                "could not confirm updates up to %d (%s); the offset file has it", last, brief(exc)
            )


async def create_app(
    settings: Settings,
    *,
    registry: MethodRegistry | None = None,
    selector: Selector | None = None,
    backoff: BackoffConfig | None = None,
) -> BotApp:
    """Open the database (migrating it), load and warm up the models, and assemble the bot.

    registry: the generation methods (default: `build_registry(settings)`); tests pass fakes.
    selector: best of N (default: from settings, see `GenerationService.from_config`).
    backoff: pauses between failed getUpdates (default: from settings).
    """
    token = settings.token()
    if not token:
        raise RuntimeError("BOT_TOKEN is not set")
    async with AsyncExitStack() as stack:  # what is opened here is closed again if a step fails
        engine, sessionmaker = await open_storage(settings, stack)
        if settings.generation_url:  # the models run in generation servers (README)
            service = await start_remote_generation(settings, stack)
            registry = service.registry
        else:
            registry = registry or build_registry(settings.generation())
            service = await start_generation(settings, registry, selector, stack)
        bot = make_bot(settings, token)
        stack.push_async_callback(bot.session.close)
        offset_file = OffsetFile.beside(sqlite_file(settings.database_url), bot.id)
        dispatcher = build_dispatcher(
            settings=settings,
            sessionmaker=sessionmaker,
            service=service,
            registry=registry,
            tracker=make_tracker(offset_file),
        )
        stack.pop_all()
        return BotApp(
            settings,
            engine,
            sessionmaker,
            registry,
            service,
            bot,
            dispatcher,
            backoff=backoff or settings_backoff(settings),
            offset_file=offset_file,
        )
    raise AssertionError("unreachable")


async def run(settings: Settings) -> None:
    app = await create_app(settings)
    try:
        await app.run_polling()
    finally:
        await app.close()
