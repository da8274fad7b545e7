"""Webhook mode (`python -m bot --webhook`): Telegram POSTs each update to the bot.

The bot is the same (`create_app`, `build_dispatcher`); only the way updates arrive changes.
`WebhookServer` is an aiohttp server with two routes:

* `POST WEBHOOK_PATH`: aiogram's `SimpleRequestHandler`. Every request must carry the secret
  token given to setWebhook (header `X-Telegram-Bot-Api-Secret-Token`); others get 401 and
  change nothing. A body that is not an update gets 400, one over 1 MiB 413. An update is
  answered 200 at once and handled as a task, as polling handles it, so a slow joke never makes
  Telegram wait; `UpdateTracker` drops an update_id that Telegram sends again. With REDIS_URL the
  update is first held in the shared journal (bot/update_journal.py), so that another replica
  handles it if this one dies before it is done.
* `GET /healthz`: 200 when the models are loaded and the database answers a `SELECT 1`, else
  503 with `{"status": "unavailable", "reason": ...}`.

The server listens before the models load (so /healthz answers 503 meanwhile; updates, before
the bot is attached, get 503 and Telegram sends them again later). aiogram's
`setup_application` wires the dispatcher's startup and shutdown hooks into an aiohttp app that
starts with the dispatcher; here the app starts first, so `serve()` emits them itself.

Stopping (SIGTERM, SIGINT, `BotApp.stop()`): new updates get 503 (Telegram keeps them for the
next start), `BotApp.close()` finishes or apologises for the jokes in flight within the grace
period and commits the votes, then the server closes. The webhook stays set: a restarted bot
gets what arrived meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.methods import TelegramMethod
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

import storage
from bot.app import BotApp, create_app
from bot.resilience import brief
from bot.startup_gc import resume_collection
from bot.update_journal import UpdateJournal
from settings import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
HEALTH_PATH = "/healthz"
MAX_UPDATE_BYTES = 1024 * 1024  # Telegram's updates are a few KiB
_ANY_ADDRESS = ("", "0.0.0.0", "::")


class WebhookError(Exception):
    """Webhook mode cannot start: the port is taken, or Telegram refused the webhook."""


class UpdateEndpoint(SimpleRequestHandler):
    """aiogram's handler, answering 400 to a body that is not an update (instead of failing in
    the background) and handing updates to the dispatcher's own task set, which `BotApp.close()`
    waits for."""

    def __init__(self, app: BotApp, secret_token: str, journal: UpdateJournal | None) -> None:
        super().__init__(
            app.dispatcher, app.bot, handle_in_background=True, secret_token=secret_token
        )
        self.journal = journal
        self.taking = True

    async def _handle_request_background(self, bot: Bot, request: web.Request) -> web.Response:
        try:
            body = await request.text()
            update = Update.model_validate(bot.session.json_loads(body), context={"bot": bot})
        except ValueError as exc:  # not JSON, not UTF-8, or not an Update (pydantic's error)
            log.warning(
                "webhook: ignoring a request that is not an update (%s)", type(exc).__name__
            )
            return _refusal(400, "not a Telegram update")
        if not self.taking:  # stopped while the body was read
            return _refusal(503, "shutting down")
        key = None
        if self.journal is not None and update.message is not None:  # see update_journal.py
            key = await self.journal.accept(update.update_id, body)
            if key is None:
                log.info("skipping update %d: held or handled already", update.update_id)
                return web.json_response({})
        self._start(bot, update, key)
        return web.json_response({})

    async def take_over(self, key: str, payload: str) -> None:
        """Handle an update whose replica died (bot/update_journal.py)."""
        try:
            update = Update.model_validate(
                self.bot.session.json_loads(payload), context={"bot": self.bot}
            )
        except ValueError:  # it was read once; still, never let one bad entry stop the sweep
            log.exception("webhook: the journal's %s is not an update", key)
            if self.journal is not None:
                await self.journal.settle(key)
            return
        self._start(self.bot, update, key)

    def _start(self, bot: Bot, update: Update, key: str | None) -> None:
        task = asyncio.create_task(self._feed(bot, update, key))
        tasks = self.dispatcher._handle_update_tasks  # as polling keeps them
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _feed(self, bot: Bot, update: Update, key: str | None) -> None:
        try:
            held = {"update_held": True} if key is not None else {}
            result = await self.dispatcher.feed_update(bot, update, **held, **self.data)
            if isinstance(result, TelegramMethod):
                await self.dispatcher.silent_call_request(bot=bot, result=result)
        except Exception:  # the error handler saw what a handler raised; this is what is left
            log.exception("webhook: update %d failed", update.update_id)
        finally:  # answered, apologised for, or cancelled at shutdown: not to be done again
            if key is not None and self.journal is not None:
                await self.journal.settle(key)


class WebhookServer:
    """The listening socket, /healthz and the webhook route; `attach()` the bot once created.

    Life cycle: `listen()`, `attach(app)`, `serve()` until stopped, `app.close()`, `close()`.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        given = settings.webhook_secret
        self.secret = given.get_secret_value() if given else secrets.token_urlsafe(32)
        self.port = settings.webhook_port
        self.app: BotApp | None = None
        self.endpoint: UpdateEndpoint | None = None
        self.stopping = False
        self._runner: web.AppRunner | None = None
        self._beat: asyncio.Task[None] | None = None

    @property
    def local_url(self) -> str:
        """This server as seen from this machine (its /healthz is `local_url + '/healthz'`)."""
        host = self.settings.webhook_host
        return f"http://{'127.0.0.1' if host in _ANY_ADDRESS else host}:{self.port}"

    @property
    def url(self) -> str:
        """Where Telegram sends updates: WEBHOOK_URL (else this server) + WEBHOOK_PATH."""
        return (self.settings.webhook_url or self.local_url) + self.settings.webhook_path

    async def listen(self) -> None:
        web_app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        web_app.router.add_post(self.settings.webhook_path, self._on_update)
        web_app.router.add_get(HEALTH_PATH, self._on_health)
        runner = web.AppRunner(web_app, handle_signals=False, access_log=None, shutdown_timeout=1)
        await runner.setup()
        host = self.settings.webhook_host
        try:
            await web.TCPSite(runner, host, self.port).start()
        except OSError as exc:
            await runner.cleanup()
            where = f"{host}:{self.port}"
            raise WebhookError(
                f"cannot listen on {where} (WEBHOOK_HOST/WEBHOOK_PORT): {exc}"
            ) from exc
        self.port = int(runner.addresses[0][1])
        self._runner = runner
        log.info("webhook server on %s (health: %s%s)", self.local_url, self.local_url, HEALTH_PATH)

    def attach(self, app: BotApp) -> None:
        app.webhook_mode = True
        self.app = app
        shared = app.dispatcher.get("shared_state")
        journal = UpdateJournal(shared) if shared is not None and shared.shared else None
        self.endpoint = UpdateEndpoint(app, self.secret, journal)

    async def serve(self, *, handle_signals: bool = True) -> None:
        """Set the webhook and take updates until the bot is stopped; then refuse new ones."""
        app, endpoint = self.app, self.endpoint
        if app is None or endpoint is None:
            raise RuntimeError("attach() the bot first")
        if handle_signals:
            app.listen_for_signals()
        resume_collection()  # started (models loaded): see bot/startup_gc.py
        try:
            if not await app.start_up(set_webhook=self._set_webhook):
                return
            workflow = {
                "dispatcher": app.dispatcher,
                "bots": [app.bot],
                **app.dispatcher.workflow_data,
            }
            await app.dispatcher.emit_startup(bot=app.bot, **workflow)
            if endpoint.journal is not None:  # beats until close(): leases outlive the grace
                self._beat = asyncio.create_task(endpoint.journal.run(endpoint.take_over))
            try:
                await app.wait_for_stop()
            finally:
                if endpoint.journal is not None:
                    endpoint.journal.sweeping = False  # a stopping replica takes nothing over
                await app.dispatcher.emit_shutdown(bot=app.bot, **workflow)
        finally:
            self.stopping = True
            endpoint.taking = False

    async def _set_webhook(self) -> None:
        assert self.app is not None
        dispatcher = self.app.dispatcher
        try:
            await self.app.bot.set_webhook(
                url=self.url,
                secret_token=self.secret,
                allowed_updates=dispatcher.resolve_used_update_types(),
                drop_pending_updates=False,
            )
        except TelegramAPIError as exc:
            raise WebhookError(f"Telegram refused the webhook {self.url}: {exc.message}") from exc
        except Exception as exc:
            raise WebhookError(f"could not set the webhook {self.url}: {brief(exc)}") from exc
        log.info("webhook set: Telegram sends updates to %s", self.url)

    async def close(self) -> None:
        self.stopping = True
        if self.endpoint is not None:
            self.endpoint.taking = False
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- routes --------------------------------------------------------------------------------

    async def _on_update(self, request: web.Request) -> web.StreamResponse:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8", "replace")
        if not secrets.compare_digest(given, self.secret.encode()):
            log.warning("webhook: refused a request without the right secret token")
            return _refusal(401, "wrong or missing secret token")
        endpoint = self.endpoint
        if endpoint is None or not endpoint.taking:
            return _refusal(503, "shutting down" if self.stopping else "starting")
        return await endpoint.handle(request)

    async def _on_health(self, request: web.Request) -> web.Response:
        problem = await self.health_problem()
        if problem is not None:
            return web.json_response({"status": "unavailable", "reason": problem}, status=503)
        return web.json_response({"status": "ok"})

    async def health_problem(self) -> str | None:
        """Why the bot cannot serve now, or None."""
        app = self.app
        if self.stopping:
            return "shutting down"
        if app is None:
            return "starting: the models are loading"
        if not app.service.running:
            return "the models are not loaded"
        return await storage.database_problem(app.engine)


def _refusal(status: int, reason: str) -> web.Response:
    return web.json_response({"ok": False, "reason": reason}, status=status)


async def run_webhook(
    settings: Settings,
    *,
    handle_signals: bool = True,
    ready: Callable[[WebhookServer], object] | None = None,
    **app_parts: Any,
) -> None:
    """`python -m bot --webhook`: listen, load the models, serve until SIGTERM/SIGINT, stop.

    ready: called once the bot is attached (local mode prints where the web chat is).
    app_parts: passed to `create_app` (tests give a fake model).
    """
    server = WebhookServer(settings)
    await server.listen()
    try:
        app = await create_app(settings, **app_parts)
        try:
            server.attach(app)
            if ready is not None:
                ready(server)
            await server.serve(handle_signals=handle_signals)
        finally:
            await app.close()
    finally:
        await server.close()
