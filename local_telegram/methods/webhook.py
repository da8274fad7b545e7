"""setWebhook, deleteWebhook, getWebhookInfo, and getUpdates refusing to run beside a webhook.

As the official local Bot API server (`telegram-bot-api --local`) does, a plain http:// URL on
any port is accepted; Telegram itself wants https on port 443, 80, 88 or 8443.
"""

from __future__ import annotations

import re
from typing import Any

from yarl import URL

from local_telegram.methods import updates
from local_telegram.params import ApiError, Params, bad_request
from local_telegram.state import TelegramState
from local_telegram.webhooks import DEFAULT_MAX_CONNECTIONS, WebhookConfig

WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)
_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


async def get_updates(state: TelegramState, params: Params) -> list[dict[str, Any]]:
    if state.webhooks.active:
        raise ApiError(409, WEBHOOK_CONFLICT)
    return await updates.get_updates(state, params)


async def set_webhook(state: TelegramState, params: Params) -> bool:
    url = (params.str("url") or "").strip()
    if not url:  # an empty URL removes the webhook, as deleteWebhook does
        return await delete_webhook(state, params)
    config = WebhookConfig(
        url=_checked_url(url),
        secret_token=_checked_secret(params.str("secret_token")),
        max_connections=_checked_connections(params.int("max_connections")),
    )
    allowed = params.json("allowed_updates", "can't parse allowed_updates JSON object")
    if allowed is not None:
        if not isinstance(allowed, list):
            raise bad_request("can't parse allowed_updates JSON object")
        state.allowed_updates = frozenset(map(str, allowed)) or None
    if params.bool("drop_pending_updates"):
        _drop_pending(state)
    await state.webhooks.set(config)
    return True


async def delete_webhook(state: TelegramState, params: Params) -> bool:
    if params.bool("drop_pending_updates"):
        _drop_pending(state)
    if state.webhooks.active:
        await state.webhooks.delete()
    return True


async def get_webhook_info(state: TelegramState, params: Params) -> dict[str, Any]:
    return state.webhooks.info()


def _drop_pending(state: TelegramState) -> None:
    while state.pending:
        state.pending.popleft().dropped = True
    state.bump()


def _checked_url(url: str) -> str:
    try:
        parsed = URL(url)
    except ValueError:
        raise bad_request("bad webhook: invalid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise bad_request("bad webhook: An HTTP(S) URL must be provided for webhook")
    return url


def _checked_secret(secret: str | None) -> str | None:
    if secret is None or secret == "":
        return None
    if not _SECRET.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    return secret


def _checked_connections(value: int | None) -> int:
    if value is None or value == 0:
        return DEFAULT_MAX_CONNECTIONS
    return max(1, min(value, 100))
