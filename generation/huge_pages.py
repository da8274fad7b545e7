"""Transparent huge pages for the model weights, through glibc's malloc.

Why: a decoding step of one joke reads every weight of the model once — 124 MB for the 125M
int8 model. With 4 KB pages that is some 30 000 pages per step, far more than the CPU's TLB
holds, so the matrix kernels keep waiting on page walks. glibc can back its large allocations
(the int8 kernels' packed weights among them) with 2 MB pages instead: `GLIBC_TUNABLES=
glibc.malloc.hugetlb=1` (glibc ≥ 2.35, with the kernel's transparent huge pages in "madvise" or
"always" mode). Measured on the 2-core machine: one `gpt-sample` request on the 125M model 8–10%
faster, for ~10 MB more memory (docs/BENCHMARKS.md §8).

glibc reads its tunables once, when a process starts, so the setting must be in the environment
before the interpreter runs. `python -m bot` therefore starts itself again with it
(`reexec_with_huge_pages`), before anything heavy is imported; the Docker image sets it directly;
the benchmarks start their children with `with_huge_pages`.

An operator's own `GLIBC_TUNABLES` is left alone, which is also the way to turn this off
(`GLIBC_TUNABLES=glibc.malloc.hugetlb=0`). Elsewhere (not Linux, another C library, huge pages
disabled in the kernel) nothing happens.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

TUNABLE = "glibc.malloc.hugetlb=1"
THP_MODE_FILE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
#: the first glibc with the `glibc.malloc.hugetlb` tunable
MIN_GLIBC = (2, 35)


def _glibc_version() -> tuple[int, ...] | None:
    library, version = platform.libc_ver()
    if library != "glibc" or not version:
        return None
    try:
        return tuple(int(part) for part in version.split(".")[:2])
    except ValueError:
        return None


def _kernel_allows_huge_pages(mode_file: Path = THP_MODE_FILE) -> bool:
    """Whether transparent huge pages are on for processes that ask ("madvise") or for all."""
    try:
        mode = mode_file.read_text()
    except OSError:
        return False
    return "[madvise]" in mode or "[always]" in mode


def huge_pages_env(
    environ: Mapping[str, str] | None = None, *, mode_file: Path = THP_MODE_FILE
) -> dict[str, str] | None:
    """`environ` (default: this process's) with the glibc tunable added, or None when it should
    not be: already has a `GLIBC_TUNABLES` (the operator's choice, or already applied), or the
    platform cannot use it."""
    environ = os.environ if environ is None else environ
    if "GLIBC_TUNABLES" in environ or sys.platform != "linux":
        return None
    version = _glibc_version()
    if version is None or version < MIN_GLIBC or not _kernel_allows_huge_pages(mode_file):
        return None
    return {**environ, "GLIBC_TUNABLES": TUNABLE}


def with_huge_pages(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` for a child process that should run as `python -m bot` does."""
    return huge_pages_env(environ) or dict(environ)


def reexec_with_huge_pages() -> None:
    """Replace this process by the same command line with huge pages on; return if not needed.

    Only for a program's entry point, before heavy imports: the process id, open files and
    arguments stay, everything in memory is gone.
    """
    env = huge_pages_env()
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)


__all__ = ["TUNABLE", "huge_pages_env", "reexec_with_huge_pages", "with_huge_pages"]
