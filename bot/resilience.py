"""Riding out Telegram's bad moments: flood control, 5xx answers and dropped connections.

`RetryMiddleware` sits in the bot's HTTP session (`bot.session.middleware(...)`), so every Bot
API call the handlers make goes through it; `polling_backoff` is the polling loop's pause between
failed `getUpdates` (aiogram keeps polling after any error, growing the pause up to its maximum).

Retry policy, one retry at most, so a handler is never stuck for long:

* 429 Too Many Requests: wait `retry_after` as Telegram asks (capped at `max_wait_s`; a longer
  ban is not waited out inside a handler) and send again. Any method, getUpdates included.
* 5xx, an undecodable answer (a proxy's HTML error page) or a network error: wait a moment and
  send again. Not getUpdates (the polling loop has its own backoff) and not sendChatAction
  (a lost "typing…" is harmless).

An update this aiogram cannot read (a field a newer Bot API made required, a malformed object)
would fail the whole getUpdates batch, again and again: one poisoned update would stop the bot for
good. `salvage_updates` reads the batch one update at a time instead; an unreadable one is logged
and replaced by an empty `Update` with its id, so the offset moves past it and the rest is handled
(`UpdateTracker` drops the empty one).

A retried sendMessage can duplicate a message: when Telegram did send it but the answer was lost
(a 502 from a proxy after the fact, a dropped connection), the retry sends it again. We accept
that on purpose: the alternative is a joke that never arrives, or one whose buttons point at a
joke we deleted as "not sent". With the retry the user sees the joke twice at worst, and both
copies carry working buttons (they name the same stored joke, which is kept unless Telegram
refused the message: `telegram_refused`). Edits and callback answers are
idempotent; a retried answerCallbackQuery whose first attempt did get through is answered
"query is too old" by Telegram, which here counts as success.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import AnswerCallbackQuery, GetUpdates, SendChatAction, TelegramMethod
from aiogram.types import Update
from aiogram.utils.backoff import BackoffConfig
from pydantic import ValidationError

log = logging.getLogger(__name__)

#: Server-side trouble worth one more try.
TRANSIENT = (TelegramServerError, TelegramNetworkError, ClientDecodeError)
QUERY_TOO_OLD = "query is too old"


def polling_backoff(min_s: float = 1.0, max_s: float = 5.0) -> BackoffConfig:
    """Pauses between failed getUpdates: from `min_s` growing by 1.3x up to `max_s`, with a
    little jitter (aiogram's is an absolute 0.1 s; smaller for sub-second test settings)."""
    min_s = max(0.01, float(min_s))
    max_s = max(float(max_s), min_s * 1.5)
    jitter = min(0.1, min_s / 4)
    return BackoffConfig(min_delay=min_s, max_delay=max_s, factor=1.3, jitter=jitter)


class RetryMiddleware(BaseRequestMiddleware):
    """One retry of a Bot API call after flood control or a transient failure (see module doc).

    max_wait_s: the longest `retry_after` waited out; a longer one is raised at once.
    transient_delay_s: the pause before retrying after a 5xx or network error.
    """

    def __init__(self, *, max_wait_s: float = 30.0, transient_delay_s: float = 0.5) -> None:
        self.max_wait_s = max_wait_s
        self.transient_delay_s = transient_delay_s
        self.retries = 0  # how many calls were retried (for tests and the soak report)

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[Any],
        bot: Bot,
        method: TelegramMethod[Any],
    ) -> Any:
        name = type(method).__name__
        first: Exception
        try:
            return await make_request(bot, method)
        except ClientDecodeError as exc:
            if _answered(exc):  # valid JSON, Telegram said ok: the call did happen
                if isinstance(method, GetUpdates):
                    return salvage_updates(bot, exc.data["result"])
                raise  # retrying would repeat what Telegram already did
            if isinstance(method, (GetUpdates, SendChatAction)):
                raise
            log.warning("%s failed (%s); retrying once", name, brief(exc))
            await asyncio.sleep(self.transient_delay_s)
            first = exc
        except TelegramRetryAfter as exc:
            if exc.retry_after > self.max_wait_s or isinstance(method, SendChatAction):
                raise
            log.warning("flood control on %s: waiting %s s, then retrying", name, exc.retry_after)
            await asyncio.sleep(exc.retry_after)
            first = exc
        except (TelegramServerError, TelegramNetworkError) as exc:
            if isinstance(method, (GetUpdates, SendChatAction)):
                raise
            log.warning("%s failed (%s); retrying once", name, brief(exc))
            await asyncio.sleep(self.transient_delay_s)
            first = exc
        self.retries += 1
        try:
            return await make_request(bot, method)
        except TelegramBadRequest as exc:
            if (
                isinstance(method, AnswerCallbackQuery)
                and isinstance(first, TRANSIENT)
                and QUERY_TOO_OLD in exc.message
            ):
                # the first attempt reached Telegram; only its answer was lost
                log.info("callback answer went through before the failure; not an error")
                return True
            raise


def _answered(exc: ClientDecodeError) -> bool:
    data = exc.data
    return isinstance(data, dict) and data.get("ok") is True and "result" in data


def salvage_updates(bot: Bot, items: Any) -> list[Update]:
    """The readable updates of a batch; unreadable ones become empty placeholders (see above)."""
    if not isinstance(items, list):
        raise ClientDecodeError("getUpdates result is not a list", TypeError(), type(items))
    updates: list[Update] = []
    for item in items:
        try:
            updates.append(Update.model_validate(item, context={"bot": bot}))
        except ValidationError as exc:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int):
                continue  # nothing to confirm it by; later ids confirm it anyway
            kinds = [k for k in item if k != "update_id"]
            log.warning(
                "skipping update %d (%s): cannot read it: %d error(s), first at %s",
                update_id,
                ",".join(kinds) or "empty",
                exc.error_count(),
                ".".join(map(str, exc.errors()[0]["loc"])) if exc.errors() else "?",
            )
            updates.append(Update(update_id=update_id))
    return updates


def telegram_refused(error: BaseException) -> bool:
    """Whether Telegram answered that it did not do what was asked (4xx, flood control not
    waited out), as opposed to an error after which the message may well have been sent: a lost
    or undecodable answer, a 5xx, a timeout, a cancelled handler. Only a refusal proves that no
    copy of a message reached the user."""
    refused = (
        TelegramBadRequest,
        TelegramForbiddenError,
        TelegramNotFound,
        TelegramUnauthorizedError,
        TelegramEntityTooLarge,
        TelegramRetryAfter,
    )
    return isinstance(error, refused)


def brief(exc: Exception) -> str:
    """A one-line description; a decode error's message would carry a whole HTML page."""
    if isinstance(exc, ClientDecodeError):
        return "ClientDecodeError: undecodable answer"
    return f"{type(exc).__name__}: {exc}"
