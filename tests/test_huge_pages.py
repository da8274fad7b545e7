"""Huge pages for the weights: when the tunable is added, and that a restarted process gets them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from generation import huge_pages
from generation.huge_pages import TUNABLE, huge_pages_env, with_huge_pages
from settings import ROOT


@pytest.fixture
def madvise_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    mode = tmp_path / "enabled"
    mode.write_text("always [madvise] never\n")
    monkeypatch.setattr(huge_pages, "_glibc_version", lambda: (2, 36))
    monkeypatch.setattr(huge_pages.sys, "platform", "linux")
    return mode


def test_the_tunable_is_added_where_glibc_and_the_kernel_allow(madvise_mode: Path) -> None:
    env = huge_pages_env({"PATH": "/bin"}, mode_file=madvise_mode)
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": TUNABLE}


def test_an_operators_own_tunables_are_left_alone(madvise_mode: Path) -> None:
    # also the way to switch it off, and what stops a restarted process from restarting again
    for own in ("glibc.malloc.hugetlb=0", "glibc.malloc.arena_max=2", TUNABLE):
        assert huge_pages_env({"GLIBC_TUNABLES": own}, mode_file=madvise_mode) is None
        assert with_huge_pages({"GLIBC_TUNABLES": own}) == {"GLIBC_TUNABLES": own}


def test_nothing_is_added_where_it_cannot_work(
    madvise_mode: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    never = madvise_mode.with_name("never")
    never.write_text("always madvise [never]\n")
    assert huge_pages_env({}, mode_file=never) is None
    assert huge_pages_env({}, mode_file=madvise_mode.with_name("missing")) is None
    monkeypatch.setattr(huge_pages, "_glibc_version", lambda: (2, 31))  # before the tunable
    assert huge_pages_env({}, mode_file=madvise_mode) is None
    monkeypatch.setattr(huge_pages, "_glibc_version", lambda: None)  # musl, macOS, ...
    assert huge_pages_env({}, mode_file=madvise_mode) is None


def test_a_restarted_entry_point_gets_huge_pages_and_keeps_its_arguments(tmp_path: Path) -> None:
    if huge_pages_env({}) is None:
        pytest.skip("this machine's C library or kernel has no transparent huge pages to ask for")
    script = tmp_path / "entry.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            from generation.huge_pages import reexec_with_huge_pages
            print("started", flush=True)
            reexec_with_huge_pages()
            block = bytearray(64 << 20)  # a large malloc, as the packed weights are
            block[::4096] = b"x" * len(block[::4096])  # touch every page
            with open("/proc/self/smaps_rollup") as smaps:
                huge_kb = next(int(l.split()[1]) for l in smaps if l.startswith("AnonHugePages"))
            print(os.environ["GLIBC_TUNABLES"], sys.argv[1:], huge_kb, sep="|")
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, str(script), "--local", "word"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split("\n")
    assert out[0] == out[1] == "started"  # it ran twice: once as started, once restarted
    tunables, args, huge_kb = out[2].split("|")
    assert tunables == TUNABLE
    assert args == "['--local', 'word']"
    assert int(huge_kb) >= 32 << 10  # most of the 64 MB block sits on 2 MB pages
