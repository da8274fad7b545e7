"""The single place where the bot is assembled; the entry point, local mode and tests all use it."""

from __future__ import annotations

from aiogram import Dispatcher
from generation.registry import MethodRegistry
from generation.service import GenerationService
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handlers import build_routers
from bot.joke_teller import JokeTeller
from bot.middlewares import DbSessionMiddleware, GenerationGuardMiddleware
from settings import Settings


def build_dispatcher(
    *,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    service: GenerationService,
    registry: MethodRegistry,
) -> Dispatcher:
    teller = JokeTeller(
        service=service,
        registry=registry,
        sessionmaker=sessionmaker,
        default_method=settings.default_method,
    )
    dp = Dispatcher(settings=settings, teller=teller, sessionmaker=sessionmaker)
    dp.update.middleware(DbSessionMiddleware(sessionmaker))
    guard = GenerationGuardMiddleware(settings.throttle_rate_s)
    dp.message.middleware(guard)
    dp.callback_query.middleware(guard)
    dp.include_routers(*build_routers())
    return dp
