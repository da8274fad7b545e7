"""Running the bot: wiring storage, generation and Telegram together, and stopping cleanly."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import BotCommand
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

import storage
from bot.dispatcher import build_dispatcher
from generation.registry import MethodRegistry, build_registry
from generation.service import GenerationService
from settings import Settings

log = logging.getLogger(__name__)

COMMANDS = [
    BotCommand(command="start", description="Что умеет бот"),
    BotCommand(command="help", description="Справка и пример"),
    BotCommand(command="method", description="Кто пишет анекдоты"),
    BotCommand(command="top", description="Лучшие анекдоты"),
    BotCommand(command="stats", description="Статистика по моделям"),
    BotCommand(command="joke", description="Анекдот по слову: /joke Молоко"),
]


@dataclass
class BotApp:
    """Everything a running bot holds, so that tests can start and stop it like `python -m bot`."""

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    registry: MethodRegistry
    service: GenerationService
    bot: Bot
    dispatcher: Dispatcher

    async def run_polling(self, *, handle_signals: bool = True) -> None:
        await self.bot.delete_webhook(drop_pending_updates=False)
        await self.bot.set_my_commands(COMMANDS)
        await self.dispatcher.start_polling(
            self.bot,
            handle_signals=handle_signals,
            close_bot_session=False,
            polling_timeout=self.settings.polling_timeout_s,
        )

    async def stop(self) -> None:
        await self.dispatcher.stop_polling()

    async def close(self) -> None:
        """Finish what is in flight (within the grace period), then release everything."""
        in_flight = set(getattr(self.dispatcher, "_handle_update_tasks", ()))
        if in_flight:
            log.info("waiting for %d update(s) in flight", len(in_flight))
            await asyncio.wait(in_flight, timeout=self.settings.shutdown_grace_s)
        await self.service.stop()
        await self.bot.session.close()
        await self.engine.dispose()


def make_bot(settings: Settings, token: str) -> Bot:
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    return Bot(token=token, session=session)


async def create_app(settings: Settings, *, registry: MethodRegistry | None = None) -> BotApp:
    """Open the database (migrating it), load and warm up the models, and assemble the bot."""
    token = settings.token()
    if not token:
        raise RuntimeError("BOT_TOKEN is not set")
    async with AsyncExitStack() as stack:
        await storage.migrate(settings.database_url)
        engine = storage.create_engine(
            settings.database_url, busy_timeout_ms=settings.db_busy_timeout_ms
        )
        stack.push_async_callback(engine.dispose)
        sessionmaker = storage.make_sessionmaker(engine)
        registry = registry or build_registry(settings)
        service = GenerationService(
            registry,
            queue_depth=settings.queue_depth,
            timeout_s=settings.generation_timeout_s,
            batch_window_ms=settings.batch_window_ms,
            max_batch_size=settings.max_batch_size,
            torch_threads=settings.torch_threads or None,
            stop_grace_s=settings.shutdown_grace_s,
        )
        await service.start()
        stack.push_async_callback(service.stop)
        bot = make_bot(settings, token)
        dispatcher = build_dispatcher(
            settings=settings, sessionmaker=sessionmaker, service=service, registry=registry
        )
        stack.pop_all()
        return BotApp(settings, engine, sessionmaker, registry, service, bot, dispatcher)
    raise AssertionError("unreachable")


async def run(settings: Settings) -> None:
    app = await create_app(settings)
    try:
        await app.run_polling()
    finally:
        await app.close()
