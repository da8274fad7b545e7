"""Webhook delivery: once the bot has called setWebhook, updates are POSTed to it.

What Telegram does, and so this server: each update is sent as a JSON body with the
`X-Telegram-Bot-Api-Secret-Token` header (when the bot gave a secret). A 2xx answer delivers it
(it is confirmed, as a higher getUpdates offset would); anything else, a timeout or a refused
connection is an error remembered for getWebhookInfo (`last_error_date`, `last_error_message`),
and the same update is sent again after a growing pause. Updates of one chat go one at a time
and in order: the next waits until the one before it was accepted. Different chats are delivered
in parallel, up to `max_connections`. While a webhook is set, getUpdates answers 409 Conflict.

A method in the webhook's answer (Telegram can run one) is not run here; the bot answers `{}`.
`fail_next(n)` makes the next n answers lost on the way back (the bot got the update, the
server saw a timeout), so a test can watch the same update arrive twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from local_telegram.records import UpdateRecord
    from local_telegram.state import TelegramState

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_MAX_CONNECTIONS = 40
TIMED_OUT = "Read timeout expired"


@dataclass(frozen=True)
class Delivery:
    """One POST of an update to the webhook and how it ended (error None: accepted)."""

    update_id: int
    url: str
    status: int  # the webhook's HTTP status; 0 when there was no answer
    error: str | None
    at: float  # time.monotonic() when the answer (or the failure) came


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret_token: str | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS


def chat_key(payload: dict[str, Any]) -> object:
    """Which queue an update waits in: its chat's, else its sender's (inline queries)."""
    event = next((v for k, v in payload.items() if k != "update_id"), None)
    if not isinstance(event, dict):
        return None
    for path in (("chat",), ("message", "chat"), ("from",), ("user",)):
        node: Any = event
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and "id" in node:
            return (path[-1], node["id"])
    return None


class WebhookDelivery:
    """The webhook the bot set (if any) and the tasks that deliver updates to it.

    timeout_s: how long an answer may take before it counts as "Read timeout expired".
    retry_min_s / retry_max_s: the pause before a failed update is sent again, doubling.
    """

    def __init__(self, state: TelegramState) -> None:
        self.state = state
        self.config: WebhookConfig | None = None
        self.timeout_s = 10.0
        self.retry_min_s = 0.5
        self.retry_max_s = 10.0
        self.deliveries: list[Delivery] = []
        self.last_error_date: int | None = None
        self.last_error_message: str | None = None
        self._lose_answers = 0
        self._runner: asyncio.Task[None] | None = None
        self._workers: dict[object, asyncio.Task[None]] = {}
        self._http: aiohttp.ClientSession | None = None

    @property
    def active(self) -> bool:
        return self.config is not None

    def attempts(self, update_id: int) -> list[Delivery]:
        """Every POST of this update, in order."""
        return [d for d in self.deliveries if d.update_id == update_id]

    def fail_next(self, count: int = 1) -> None:
        """The next `count` answers of the webhook are lost: the update was received, the server
        sees a timeout and sends it again."""
        self._lose_answers += count

    # --- set, delete -------------------------------------------------------------------------

    async def set(self, config: WebhookConfig) -> None:
        await self._stop_tasks()
        self.config = config
        self._runner = asyncio.create_task(self._run(), name="webhook-delivery")
        self.state.bump()

    async def delete(self) -> None:
        await self._stop_tasks()
        self.config = None
        self.state.bump()

    async def close(self) -> None:
        """Stop delivering (the server stops); the webhook stays set."""
        await self._stop_tasks()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _stop_tasks(self) -> None:
        tasks = [t for t in (self._runner, *self._workers.values()) if t is not None]
        self._runner = None
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._workers.clear()

    # --- delivering ----------------------------------------------------------------------------

    async def _run(self) -> None:
        """Start a worker for each chat with updates waiting, again on every change."""
        while not self.state.closing:
            changed = self.state.changed
            self._start_workers()
            await changed.wait()

    def _start_workers(self) -> None:
        config = self.config
        if config is None:
            return
        for record in self._waiting():
            key = chat_key(record.payload)
            if key in self._workers:
                continue
            if len(self._workers) >= config.max_connections:
                break
            self._workers[key] = asyncio.create_task(self._drain(key))

    def _waiting(self) -> list[UpdateRecord]:
        """The queued updates of the kinds the bot asked for, oldest first."""
        from local_telegram.methods.updates import available  # the methods import this module

        return available(self.state, max(1, len(self.state.pending)))

    def _next_of(self, key: object) -> UpdateRecord | None:
        return next((r for r in self._waiting() if chat_key(r.payload) == key), None)

    async def _drain(self, key: object) -> None:
        """Deliver this chat's updates one by one, each until it is accepted."""
        try:
            while (record := self._next_of(key)) is not None:
                await self._deliver(record)
        finally:
            if self._workers.get(key) is asyncio.current_task():
                del self._workers[key]
                self.state.bump()  # the runner looks for other chats waiting

    async def _deliver(self, record: UpdateRecord) -> None:
        pause = self.retry_min_s
        while True:
            error = await self._post(record)
            if error is None:
                self._accept(record)
                return
            self.last_error_date, self.last_error_message = int(time.time()), error
            self.state.bump()
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.retry_max_s)

    async def _post(self, record: UpdateRecord) -> str | None:
        """Send the update once; None when the webhook accepted it, else Telegram's error text."""
        config = self.config
        assert config is not None
        if self._http is None:
            self._http = aiohttp.ClientSession()
        if record.delivered_at is None:
            record.delivered_at = time.monotonic()
        headers = {SECRET_HEADER: config.secret_token} if config.secret_token else {}
        status, error = 0, None
        try:
            async with self._http.post(
                config.url,
                json=record.payload,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            ) as response:
                await response.read()
                status = response.status
                if not 200 <= status < 300:
                    error = f"Wrong response from the webhook: {status} {response.reason}"
        except TimeoutError:
            error = TIMED_OUT
        except aiohttp.ClientError as exc:
            error = _connection_error(exc)
        if error is None and self._lose_answers > 0:
            self._lose_answers -= 1
            error = TIMED_OUT
        delivery = Delivery(record.update_id, config.url, status, error, time.monotonic())
        self.deliveries.append(delivery)
        return error

    def _accept(self, record: UpdateRecord) -> None:
        if record in self.state.pending:
            self.state.pending.remove(record)
            record.confirmed_at = time.monotonic()
        self.state.bump()

    # --- getWebhookInfo ------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        config = self.config
        result: dict[str, Any] = {
            "url": config.url if config else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self.state.pending),
        }
        if config is not None:
            result["max_connections"] = config.max_connections
            if self.state.allowed_updates is not None:
                result["allowed_updates"] = sorted(self.state.allowed_updates)
        if self.last_error_date is not None:
            result["last_error_date"] = self.last_error_date
            result["last_error_message"] = self.last_error_message
        return result


def _connection_error(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "Connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "Connection closed by the webhook"
    return f"Connection error: {type(exc).__name__}"
