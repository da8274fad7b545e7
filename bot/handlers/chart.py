"""/chart for the operators in ADMIN_IDS: the like ratio per method and version over time.

The picture is `storage.report`'s (the same as `python -m storage.report`), drawn in a worker
thread so the event loop keeps answering everyone else. /stats shows admins a button for it.
Anyone else gets what an unknown command or an outdated button gets (the fallback router).
"""

from __future__ import annotations

from aiogram import Bot, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message, User
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.replies import answer_query
from settings import Settings
from storage.report import chart_png

FILENAME = "stats.png"


class ChartCb(CallbackData, prefix="ch"):
    """The 📈 button under /stats (admins only)."""


def chart_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(text=texts.CHART_BUTTON, callback_data=ChartCb())
    return builder.as_markup()


def is_admin_user(user: User | None, settings: Settings) -> bool:
    return user is not None and user.id in settings.admin_ids


def from_admin(event: Message | CallbackQuery, settings: Settings) -> bool:
    return is_admin_user(event.from_user, settings)


async def send_chart(bot: Bot, chat_id: int, session: AsyncSession) -> None:
    png = await chart_png(session)
    if png is None:
        await bot.send_message(chat_id, texts.CHART_EMPTY)
        return
    await bot.send_photo(
        chat_id, BufferedInputFile(png, filename=FILENAME), caption=texts.CHART_CAPTION
    )


async def chart_command(message: Message, bot: Bot, session: AsyncSession) -> None:
    await send_chart(bot, message.chat.id, session)


async def chart_button(query: CallbackQuery, bot: Bot, session: AsyncSession) -> None:
    await answer_query(query)
    if query.message is not None:
        await send_chart(bot, query.message.chat.id, session)


def build_router() -> Router:
    router = Router(name="chart")
    router.message.register(chart_command, Command("chart"), from_admin)
    router.callback_query.register(chart_button, ChartCb.filter(), from_admin)
    return router
