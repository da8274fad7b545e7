"""The real bot in its own process, with an event-loop heartbeat: the subject of bench.bot and
bench.cold_start.

    python -m bench.bot_process OUT.json      (settings from the environment, like python -m bot)

It builds the bot exactly as `python -m bot` does (`bot.app.create_app(Settings())`), then polls
until SIGTERM/SIGINT. A heartbeat task sleeps 10 ms at a time and records how late it wakes up:
that lateness is how long the event loop could not run anything else (a blocked loop delays
every chat). On exit it writes OUT.json: wall-clock marks (imports done, models ready), RSS, and
every heartbeat lag above 2 ms with its wall-clock time, so the caller can look at any window.
"""

from __future__ import annotations

import time

STARTED = time.time()

import asyncio  # noqa: E402 - the start time is taken before the heavy imports on purpose
import json  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

from bench.common import peak_rss_mb, rss_mb  # noqa: E402

TICK_S = 0.01
RECORD_ABOVE_S = 0.002


async def heartbeat(lags: list[tuple[float, float]], ticks: list[int]) -> None:
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(TICK_S)
        lag = loop.time() - before - TICK_S
        ticks[0] += 1
        if lag > RECORD_ABOVE_S:
            lags.append((time.time(), lag))


def loaded_marker(out: str) -> str:
    """The file the bot process creates once all its models are loaded."""
    return out + ".loaded"


async def watch_models(app: Any, marks: dict[str, float], out: str) -> None:
    """Record when every method's model is loaded (optional ones load after `ready`) and the RSS
    then: the memory of the bot with all its models. Touches OUT.loaded for the caller."""
    registry = app.registry
    while True:
        names = registry.names()
        if all(registry.is_loaded(registry.method(name).backend_key) for name in names):
            marks["all_loaded"] = time.time()
            marks["rss_all_loaded_mb"] = rss_mb()
            with open(loaded_marker(out), "w", encoding="utf-8") as fh:
                fh.write(str(marks["all_loaded"]))
            return
        await asyncio.sleep(0.05)


async def run(out: str) -> None:
    from bot.app import create_app
    from settings import Settings

    imported = time.time()
    app = await create_app(Settings())
    ready = time.time()
    ready_rss = rss_mb()
    print(json.dumps({"ready": ready}), flush=True)
    lags: list[tuple[float, float]] = []
    ticks = [0]
    beat = asyncio.create_task(heartbeat(lags, ticks))
    marks: dict[str, float] = {}
    watch = asyncio.create_task(watch_models(app, marks, out))
    try:
        await app.run_polling(handle_signals=True)
    finally:
        beat.cancel()
        watch.cancel()
        await app.close()
    result = {
        "started": STARTED,
        "imported": imported,
        "ready": ready,
        "rss_ready_mb": ready_rss,
        **marks,
        "peak_rss_mb": peak_rss_mb(),
        "lags": lags,
        "ticks": ticks[0],
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh)


def main() -> int:
    import logging

    from bot.startup_gc import pause_collection

    pause_collection()  # as `python -m bot` does

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(sys.argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
