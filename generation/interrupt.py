"""Interrupting a model call between two decoding or denoising steps.

Why: a generation that outlives the shutdown grace period (a long DiffuSeq chain, a slow CPU)
would otherwise hold the worker thread until it finishes, and the process cannot exit cleanly
under a thread that is inside torch. The worker thread installs its stop event here; the
backends call `check()` once per step, which raises `GenerationCancelled` once it is set. Kept
per thread, so that several services in one process (the tests) stop independently.
"""

from __future__ import annotations

import threading

from generation.types import GenerationCancelled

_local = threading.local()


def install(stop: threading.Event) -> None:
    """Make `stop` the event that interrupts model calls made by this thread."""
    _local.stop = stop


def check() -> None:
    """Raise `GenerationCancelled` if this thread's stop event is set; cheap enough per step."""
    stop: threading.Event | None = getattr(_local, "stop", None)
    if stop is not None and stop.is_set():
        raise GenerationCancelled("the generation service is stopping")


__all__ = ["check", "install"]
