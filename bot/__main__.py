"""`python -m bot` runs the bot on Telegram; `python -m bot --local` runs it without Telegram.

`--webhook`: Telegram POSTs updates to the bot instead of the bot polling (bot/webhook.py)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import traceback
from collections.abc import Coroutine
from typing import Any

from pydantic import SecretStr, ValidationError

from bot.startup_gc import pause_collection
from settings import Settings, explain, get_settings

NO_TOKEN = (
    "BOT_TOKEN is not set: put BOT_TOKEN=<token from @BotFather> into the environment or .env, "
    "or try the bot locally with `python -m bot --local`."
)
NO_WEBHOOK_URL = (
    "WEBHOOK_URL is not set: --webhook needs the public https:// address Telegram will POST to "
    '(README, "Webhook mode"), or run without --webhook to poll.'
)
LOCAL_TOKEN = "100000:local-try-out"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "--local",
        action="store_true",
        help="run a local Bot API server with a web chat page, no Telegram",
    )
    parser.add_argument(
        "--webhook",
        action="store_true",
        help="receive updates on a webhook (WEBHOOK_* settings) instead of polling",
    )
    parser.add_argument("--host", default="127.0.0.1", help="local mode: address to listen on")
    parser.add_argument("--port", type=int, default=8081, help="local mode: port (0 = any free)")
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show tracebacks of start-up errors"
    )
    return parser.parse_args(argv)


async def run_local(settings: Settings, host: str, port: int, *, webhook: bool = False) -> None:
    from bot.app import create_app
    from local_telegram import LocalBotApi

    # Update ids go on from the clock, not from 1: the bot remembers the last handled id next to
    # its database (data/jokes.db-offset) and would skip a restarted server's first messages.
    api = LocalBotApi(token=LOCAL_TOKEN, host=host, port=port, first_update_id=int(time.time()))
    await api.start()
    try:
        local = settings.model_copy(
            update={
                "telegram_api_url": api.url,
                "bot_token": SecretStr(LOCAL_TOKEN),
                "webhook_url": None,  # --webhook: this server posts to the bot's own socket
            }
        )

        def announce(*_: object) -> None:
            print(
                f"Local try-out: open {api.url}/ in a browser and send a word (Ctrl+C stops).",
                flush=True,
            )

        if webhook:
            from bot.webhook import run_webhook

            await run_webhook(local, ready=announce)
            return
        app = await create_app(local)
        announce()
        try:
            await app.run_polling()
        finally:
            await app.close()
    finally:
        await api.stop()


def main(argv: list[str] | None = None) -> int:
    pause_collection()  # until the models are loaded: a faster start-up (bot/startup_gc.py)
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin list on every start
    # transformers' "Loading weights" bar is for notebooks; in a service log it is noise. Read
    # once when transformers is imported (in the generation worker, later).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        settings = get_settings()
    except ValidationError as error:
        if args.verbose:
            raise
        print(f"Cannot start: {explain(error)}", file=sys.stderr)
        return 1
    from bot.redaction import install_token_redaction

    install_token_redaction(settings.token())
    if args.local:
        local = run_local(settings, args.host, args.port, webhook=args.webhook)
        code = _run_reporting(local, args.verbose)
        exit_now_if_a_model_is_still_running(code)
        return code
    if not settings.token():
        print(NO_TOKEN, file=sys.stderr)
        return 2
    if args.webhook and not settings.webhook_url:
        print(NO_WEBHOOK_URL, file=sys.stderr)
        return 2
    import storage

    # The database first, before aiogram and the models load (seconds): a path that is a folder,
    # a file that is not a database or a schema from a newer release fails the start at once.
    failed = _run_reporting(storage.migrate(settings.database_url), args.verbose)
    if failed:
        return failed
    if args.webhook:
        from bot.webhook import run_webhook as run
    else:
        from bot.app import run

    code = _run_reporting(run(settings), args.verbose)
    exit_now_if_a_model_is_still_running(code)
    return code


def _run_reporting(coro: Coroutine[Any, Any, None], verbose: bool = False) -> int:
    """Run the bot until SIGTERM/SIGINT (exit 0). What makes starting impossible (a database
    that cannot be opened or migrated, a model that cannot be loaded, a token Telegram rejects)
    is a one-line message and exit 1; the traceback only with `--verbose`."""
    import storage
    from generation.types import GenerationError

    try:
        asyncio.run(coro)
    except (storage.StorageError, GenerationError) as exc:
        if verbose:
            traceback.print_exc()
        what = "the models did not load: " if isinstance(exc, GenerationError) else ""
        print(f"Cannot start: {what}{exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl+C before the bot took over the signals
        return 130
    except Exception as exc:
        from aiogram.exceptions import TelegramUnauthorizedError  # imported late: it is heavy

        from bot.webhook import WebhookError

        if isinstance(exc, TelegramUnauthorizedError):
            print("Cannot start: Telegram rejected BOT_TOKEN (401 Unauthorized).", file=sys.stderr)
            return 1
        if isinstance(exc, WebhookError):
            if verbose:
                traceback.print_exc()
            print(f"Cannot start: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


def exit_now_if_a_model_is_still_running(code: int) -> None:
    """Exit with `code` at once when a generation outlived the shutdown grace.

    Python's normal exit would finalise the interpreter under a thread that is still inside
    torch, and the C++ runtime then aborts the process (SIGABRT, "terminate called without an
    active exception") after the bot had shut down cleanly. By now every vote is committed, the
    offsets are confirmed and the users have had their apology: nothing is left to flush but the
    log.
    """
    import threading

    workers = [t for t in threading.enumerate() if t.name == "generation-worker"]
    for worker in workers:  # one that is only finishing (a failed start, a stop) gets a moment
        worker.join(timeout=1.0)
    if any(worker.is_alive() for worker in workers):
        logging.getLogger(__name__).warning("a generation was still running; exiting without it")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
