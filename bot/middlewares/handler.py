"""The type of the handler an aiogram middleware wraps (`BaseMiddleware.__call__`'s first
argument), named once for every middleware of the bot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram.types import TelegramObject

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

__all__ = ["Handler"]
