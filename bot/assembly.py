"""The parts `bot.app.create_app` puts together: the database, the generation service (in this
process, or the generation servers' with GENERATION_URL), the Bot client and the update
tracker. Each opened part is registered on the caller's exit stack, so a
start that fails half-way closes what it had opened."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.utils.backoff import BackoffConfig
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import storage
from bot.resilience import RetryMiddleware, polling_backoff
from bot.updates import OffsetFile, UpdateTracker
from generation.openai_api import parse_urls
from generation.registry import MethodRegistry
from generation.remote import RemoteGenerationService
from generation.selection import Selector
from generation.service import GenerationService
from settings import Settings

log = logging.getLogger(__name__)


def make_bot(settings: Settings, token: str) -> Bot:
    """A Bot on the configured API server; every call goes through `RetryMiddleware`."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(RetryMiddleware())
    return Bot(token=token, session=session)


def settings_backoff(settings: Settings) -> BackoffConfig:
    """The pauses between failed getUpdates calls (POLLING_BACKOFF_MIN_S / _MAX_S)."""
    return polling_backoff(
        settings.polling_backoff_min_s,
        settings.polling_backoff_max_s,
    )


async def open_storage(
    settings: Settings, stack: AsyncExitStack
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """Migrate the database and open it; the engine is disposed of by `stack` on failure."""
    await storage.migrate(settings.database_url)
    engine = storage.create_engine(
        settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms
    )
    stack.push_async_callback(engine.dispose)
    return engine, storage.make_sessionmaker(engine)


async def start_generation(
    settings: Settings,
    registry: MethodRegistry,
    selector: Selector | None,
    stack: AsyncExitStack,
) -> GenerationService:
    """Start the service once the models it needs first are loaded; stopped by `stack` on
    failure."""
    # The default method's model (and any required one) loads before the bot answers; optional
    # ones (DiffuSeq) load in the worker once it is idle, so they do not delay the first joke.
    preload, load_later = registry.startup_order(settings.default_method)
    service = GenerationService.from_config(
        registry,
        settings.generation(),
        preload=preload,
        load_later=load_later,
        **({"selector": selector} if selector is not None else {}),
    )
    await service.start()
    stack.push_async_callback(service.stop)
    return service


async def start_remote_generation(
    settings: Settings, stack: AsyncExitStack
) -> RemoteGenerationService:
    """GENERATION_URL: the generation servers' service, once one has listed its methods (the
    picker's); stopped by `stack` on failure."""
    urls = parse_urls(settings.generation_url)
    service = RemoteGenerationService.from_config(settings.generation(), urls)
    await service.start()
    stack.push_async_callback(service.stop)
    return service


def make_tracker(offset_file: OffsetFile | None) -> UpdateTracker:
    """The update tracker, starting above the updates handled before a restart."""
    tracker = UpdateTracker(floor=offset_file.take() if offset_file else 0)
    if tracker.floor:
        log.info("updates up to %d were handled before the restart", tracker.floor)
    return tracker
