"""OpenMP's wait policy, set before torch loads its runtime."""

from __future__ import annotations

import os
import sys


def prefer_sleeping_openmp_threads() -> bool:
    """Set OMP_WAIT_POLICY=PASSIVE unless torch (and its OpenMP runtime) is already loaded or
    the variable is set; True if it was set here.

    Why: by default OpenMP worker threads spin between parallel regions. A decoding step is many
    small regions, and on a small machine the bot's event loop, SQLite and the OS need a core now
    and then; a spinning or descheduled worker then stalls every region (docs/BENCHMARKS.md,
    "Threads and OpenMP"). The runtime reads the variable once, when torch is imported, which in
    the bot happens in the worker thread after `GenerationService.start()`.
    """
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


__all__ = ["prefer_sleeping_openmp_threads"]
