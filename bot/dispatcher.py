"""The single place where the bot is assembled; the entry point, local mode and tests all use it."""

from __future__ import annotations

from aiogram import Dispatcher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import ErrorReporter
from bot.handlers import build_routers
from bot.incidents import StorageIncidents
from bot.joke_teller import JokeTeller
from bot.middlewares import DbSessionMiddleware, GenerationGuardMiddleware
from bot.middlewares.humans import IgnoreBotsMiddleware
from bot.middlewares.inline_posts import IgnoreOwnInlinePostsMiddleware
from bot.shared_jokes import ShareLinks
from bot.shared_state import SharedState, shared_state
from bot.updates import UpdateTracker
from generation.registry import MethodRegistry
from generation.service import GenerationService
from settings import Settings


def build_dispatcher(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    service: GenerationService,
    registry: MethodRegistry,
    tracker: UpdateTracker | None = None,
    shared: SharedState | None = None,
) -> Dispatcher:
    """The dispatcher with its routers and middlewares.

    Workflow data every handler can ask for: `settings`, `teller`, `sessionmaker`, `service`,
    `update_tracker`, `error_reporter`, `shared_state` (Redis with REDIS_URL, else None: memory;
    whoever runs the dispatcher closes it), `share_links` (signs the references of shared jokes).
    """
    shared = shared or shared_state(settings)
    incidents = StorageIncidents()
    share_links = ShareLinks.from_settings(settings)
    teller = JokeTeller(
        service=service,
        registry=registry,
        sessionmaker=sessionmaker,
        default_method=settings.default_method,
        incidents=incidents,
        shared=shared,
        share_links=share_links,
    )
    tracker = tracker or UpdateTracker()
    tracker.shared = tracker.shared or shared
    reporter = ErrorReporter(incidents)
    dp = Dispatcher(
        settings=settings,
        teller=teller,
        sessionmaker=sessionmaker,
        service=service,
        update_tracker=tracker,
        error_reporter=reporter,
        shared_state=shared,
        share_links=share_links,
    )
    dp.update.outer_middleware(tracker)  # inside aiogram's own error middleware
    dp.message.outer_middleware(IgnoreBotsMiddleware())
    dp.message.outer_middleware(IgnoreOwnInlinePostsMiddleware())
    dp.update.middleware(DbSessionMiddleware(sessionmaker))
    guard = GenerationGuardMiddleware(settings.throttle_rate_s, state=shared)
    dp.message.middleware(guard)
    dp.callback_query.middleware(guard)
    dp.inline_query.middleware(guard)  # inline answers share the chat limits
    dp.errors.register(reporter.handle)
    dp.include_routers(*build_routers())
    return dp
