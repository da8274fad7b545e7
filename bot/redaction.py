"""Keeping the bot token out of logs.

The token is part of every Bot API URL (`/bot<token>/<method>`), so any error that quotes the URL
would print it: aiohttp's InvalidURL, a connection error from a proxy, a traceback of a library
that logs its request. `TokenRedactor` is a logging filter on the *handlers* (a filter on a
logger would miss records propagated from child loggers); it rewrites the final text of a record,
exception and stack included, replacing the token, and its secret half alone, with `<BOT_TOKEN>`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

MASK = "<BOT_TOKEN>"


def secrets_of(token: str) -> list[str]:
    """What must never be printed: the whole token and the part after the colon.

    The number before the colon is the bot's public user id and stays readable.
    """
    found = [token]
    _, sep, secret = token.partition(":")
    if sep and len(secret) >= 8:
        found.append(secret)
    return [s for s in found if s]


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:  # the whole token first, then its secret half
        text = text.replace(secret, MASK)
    return text


class TokenRedactor(logging.Filter):
    """Masks the token in a record's message, arguments, exception text and stack info."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.secrets = secrets_of(token)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def install_token_redaction(
    token: str | None, handlers: Iterable[logging.Handler] | None = None
) -> TokenRedactor | None:
    """Add a `TokenRedactor` to `handlers` (default: the root logger's); returns it."""
    if not token:
        return None
    redactor = TokenRedactor(token)
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        handler.addFilter(redactor)
    return redactor
