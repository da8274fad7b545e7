"""Shared pieces of the benchmarks: machine description, statistics, markdown, child processes.

Each measured system runs in its own child process (`python -m bench.<name> --child JSON`), so
that its peak RSS is its own and one system's allocations cannot slow the next; the parent starts
the children one after the other (interleaved over repeats) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from settings import ROOT

#: Starting words: short everyday nouns, names and openers of Russian jokes (1–3 tokens each).
WORDS = [
    "Молоко", "Штирлиц", "Вовочка", "Доктор", "Кот", "Программист", "Жена", "Учитель",
    "Муж", "Тёща", "Студент", "Армия", "Полицейский", "Бабушка", "Пьяный", "Чукча",
    "Рабинович", "Заходит", "Врач", "Сосед", "Начальник", "Экзамен", "Поезд", "Магазин",
    "Собака", "Директор", "Ёжик", "Колобок", "Пациент", "Блондинка", "Депутат", "Рыбак",
    "Охотник", "Священник", "Водитель", "Профессор", "Школьник", "Бизнесмен", "Грузин", "Мужик",
]  # fmt: skip


def machine() -> dict[str, Any]:
    import torch

    from generation.evaluation.pipeline import cpu_name

    model = cpu_name()
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "load_1min": round(load, 2),
    }


def machine_line(info: dict[str, Any], threads: int | None = None) -> str:
    parts = [
        f"{info['cpu']}, {info['cores']} cores",
        f"torch {info['torch']}",
        f"{info['date']}",
        f"load average at start {info['load_1min']}",
    ]
    if threads:
        parts.insert(1, f"{threads} torch threads")
    return "Machine: " + "; ".join(parts) + "."


def bench_parser(module: str, doc: str | None) -> argparse.ArgumentParser:
    """The parser of `python -m <module>`, whose docstring is the help text, laid out as written."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """How a benchmark was called, for its report: `python -m bench.<name> [arguments]`."""
    return " ".join([f"python -m {module}", *(sys.argv[1:] if argv is None else argv)])


def print_heading(command: str, info: dict[str, Any], threads: int | None) -> None:
    """The first lines of every report: the command line, then the machine line."""
    print(f"`{command.strip()}`\n")
    print(machine_line(info, threads))


def print_report(
    command: str,
    info: dict[str, Any],
    threads: int | None,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """A whole report: heading, then the table."""
    print_heading(command, info, threads)
    print()
    print(table(header, rows))


def _status_mb(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM starts afresh at exec; `ru_maxrss` would not: Linux
    carries it over from the parent across fork + exec, so a child of a big parent would show
    the parent's size."""
    peak = _status_mb("VmHWM")
    if peak == peak:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def rss_mb() -> float:
    return _status_mb("VmRSS")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if v == v]  # drop NaN
    return statistics.median(clean) if clean else float("nan")


def run_child(
    module: str,
    spec: dict[str, Any],
    timeout: float = 3600,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run `python -m module --child JSON` and return the JSON object it prints last.
    `env`: variables to set (or override) in the child's environment."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module, "--child", json.dumps(spec, ensure_ascii=False)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **os.environ,
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONWARNINGS": "ignore",
            # what our service sets for itself (generation.service); the original gets it too
            "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE"),
            **(env or {}),
        },
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise RuntimeError(f"{module} child failed ({proc.returncode}): {spec}\n{tail}")
    result = json.loads(lines[-1])
    result["child_wall_s"] = time.perf_counter() - started
    return result


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            if value != value:
                return "–"
            return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def quiet_logs() -> None:
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.basicConfig(level=logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
