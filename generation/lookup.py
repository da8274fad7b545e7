"""Serving a lookup method (`Method.lookup`, a `LookupBackend` such as `classic`).

Why not the worker: a lookup is a few array look-ups, not a model call, so queueing it behind
the models' batches would only make it wait, and best of N has nothing to choose from. It runs in
a thread of its own all the same (`asyncio.to_thread`): the first call may load the index, and
the event loop must never wait on that.
"""

from __future__ import annotations

import asyncio
from typing import cast

from generation.registry import Method, MethodRegistry
from generation.types import (
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    LookupBackend,
)


async def look_up(
    registry: MethodRegistry, request: GenerationRequest, method: Method, timeout: float
) -> list[Joke]:
    """The backend's jokes for `request`; its errors as GenerationError (NothingFound included)."""

    def run() -> list[Joke]:
        backend = cast(LookupBackend, registry.backend(method.name))
        try:
            return backend.lookup(request)
        except GenerationError:
            raise
        except Exception as error:  # a fault in the lookup is the request's failure, not a crash
            raise GenerationError(f"lookup failed: {type(error).__name__}: {error}") from error

    try:
        return await asyncio.wait_for(asyncio.to_thread(run), timeout)
    except TimeoutError:
        raise GenerationTimeout(f"no joke within {timeout:g} s") from None


__all__ = ["look_up"]
