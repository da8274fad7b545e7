"""The last line of defence: an update whose handler raised is logged, apologised for, and dropped.

aiogram would keep polling anyway, but it logs the failure as an unhandled exception and the user
is left waiting (a button keeps spinning). `ErrorReporter.handle` is registered on `dp.errors`:
it logs the exception once with its traceback, tells the user something went wrong (best effort:
the apology itself may fail when Telegram is down), and counts, so tests can assert that a hostile
update made no handler raise.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque

from aiogram import Bot
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramForbiddenError
from aiogram.types import ErrorEvent

import storage
from bot import texts
from bot.incidents import StorageIncidents

log = logging.getLogger(__name__)


class ErrorReporter:
    def __init__(self, incidents: StorageIncidents | None = None) -> None:
        self.incidents = incidents or StorageIncidents()
        self.count = 0
        self.recent: deque[BaseException] = deque(maxlen=50)

    async def handle(self, event: ErrorEvent, bot: Bot) -> bool:
        error = event.exception
        update = event.update
        self.count += 1
        self.recent.append(error)
        if isinstance(error, TelegramForbiddenError):  # the user blocked the bot: nobody to tell
            log.info("update %d: %s", update.update_id, error)
            return True
        if isinstance(error, storage.StorageError):  # one line per incident, not per update
            self.incidents.failed(f"handle update {update.update_id} ({_kind(update)})", error)
        else:
            log.error(
                "update %d (%s) failed: %s: %s",
                update.update_id,
                _kind(update),
                type(error).__name__,
                error,
                exc_info=error,
            )
        # The database's trouble is worth naming: the user learns it is not them, and waits.
        text = texts.DATABASE_BUSY if isinstance(error, storage.StorageError) else None
        with contextlib.suppress(Exception):
            if update.callback_query is not None:
                await update.callback_query.answer(text or texts.SOMETHING_WRONG, show_alert=True)
            elif update.message is not None and update.message.chat.type == ChatType.PRIVATE:
                await bot.send_message(update.message.chat.id, text or texts.SOMETHING_WRONG)
        return True


def _kind(update: object) -> str:
    try:
        return str(update.event_type)  # type: ignore[attr-defined]
    except Exception:  # an update type this aiogram does not know
        return "unknown"
