"""Python's cyclic garbage collector paused while the bot starts, and frozen out of the start-up
heap afterwards.

Why: starting imports aiogram (it builds ~450 pydantic models), torch and transformers and loads
the models: over half a million Python objects, nearly all of which live as long as the process.
The collector runs after every few hundred allocations, so during start-up it runs thousands of
times, and its older generations rescan that growing heap again and again; pausing it makes the
imports clearly faster, and a full collection afterwards finds nothing to free (docs/BENCHMARKS.md
§7, "Cold start"). `gc.freeze()` then moves everything that exists into a permanent generation
the collector never scans again, so a later full collection — long enough over the start-up heap
to stall the event loop — stays short while the bot serves.
"""

from __future__ import annotations

import gc

_paused_here = False


def pause_collection() -> None:
    """Call first thing in an entry point, before the heavy imports."""
    global _paused_here
    if gc.isenabled():
        gc.disable()
        _paused_here = True


def resume_collection() -> None:
    """Freeze what start-up built and collect again; a no-op unless `pause_collection` paused it
    (so that code run by tests or embedders leaves their collector alone)."""
    global _paused_here
    if _paused_here:
        gc.freeze()
        gc.enable()
        _paused_here = False
