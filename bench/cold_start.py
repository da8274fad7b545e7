"""Cold start: process start to the first joke served, and the memory of the loaded bot.

    python -m bench.cold_start [--repeats N] [--threads T] [--diffuseq auto|random|off]

Each repeat starts the real bot in a fresh process (`bench.bot_process`, which builds it exactly as
`python -m bot` does) against the local Bot API server, with a user's word already waiting, and
measures from the moment the process is spawned to: imports done, the default method's model
loaded and warmed up (`create_app` returned), the first joke reaching the server, and every model
loaded (optional ones, DiffuSeq, load in the background once the worker is idle). RSS is read in
the bot process when it is ready and once both default models are loaded: with no shipped
models/diffuseq, `--diffuseq auto` uses a random-weight model of the trainer's "gpu" preset in its
place (same size, same cost). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bot import bot_env, start_bot, stop_bot
from bench.bot_process import loaded_marker
from bench.common import command_line, machine, print_heading, table
from settings import ROOT


async def one_start(args: argparse.Namespace, diffuseq: Path | None) -> dict[str, Any]:
    from local_telegram import LocalBotApi

    api = LocalBotApi(token="100000:bench-token")
    await api.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
            extra = {"ENABLE_DIFFUSEQ": "false"} if diffuseq is None else {
                "DIFFUSEQ_MODEL": str(diffuseq), "ENABLE_DIFFUSEQ": "true"
            }  # fmt: skip
            env = bot_env(api.url, Path(tmp) / "jokes.db", args, extra)
            out = Path(tmp) / "bot.json"
            sent = api.send_text(7, "Молоко")  # waiting before the bot exists
            proc, started = await start_bot(api, env, out)
            try:
                reply = await api.wait_for_bot_message(7, after=sent.message_id, timeout=600)
                first_joke = time.time() - (time.monotonic() - reply.at) - started
                marker = Path(loaded_marker(str(out)))
                for _ in range(1200):  # optional models load after the first joke: wait for them
                    if marker.exists():
                        break
                    await asyncio.sleep(0.05)
            finally:
                report = await stop_bot(proc, out)
    finally:
        await api.stop()
    return {
        "imports_s": report["imported"] - started,
        "ready_s": report["ready"] - started,
        "first_joke_s": first_joke,
        "all_loaded_s": report.get("all_loaded", float("nan")) - started,
        "rss_ready_mb": report["rss_ready_mb"],
        "rss_all_mb": report.get("rss_all_loaded_mb", float("nan")),
        "joke": reply.text,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cold_start", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--diffuseq", default="auto", choices=("auto", "random", "off"))
    parser.add_argument("--method", default="")
    args = parser.parse_args(argv)
    info = machine()
    shipped = ROOT / "models" / "diffuseq"
    with tempfile.TemporaryDirectory(prefix="bench-cold-models-") as tmp:
        diffuseq: Path | None = None
        label = "off"
        if args.diffuseq != "off":
            if args.diffuseq == "auto" and (shipped / "config.json").is_file():
                diffuseq, label = shipped, "shipped models/diffuseq"
            else:
                from bench.models import build_diffuseq_like

                diffuseq = build_diffuseq_like(Path(tmp) / "diffuseq")
                label = "random-weight stand-in, trainer preset 'gpu'"
        runs = []
        for index in range(args.repeats):
            print(f"[cold start {index + 1}/{args.repeats}]", file=sys.stderr)
            runs.append(asyncio.run(one_start(args, diffuseq)))
    keys = ("imports_s", "ready_s", "first_joke_s", "all_loaded_s", "rss_ready_mb", "rss_all_mb")
    rows = [[index + 1, *(run[key] for key in keys)] for index, run in enumerate(runs)]
    rows.append(["median", *(statistics.median(run[key] for run in runs) for key in keys)])
    print_heading(command_line("bench.cold_start", argv), info, args.threads)
    print(f"\nModels: shipped models/gpt; DiffuSeq: {label}. First joke: {runs[-1]['joke']!r}\n")
    header = [
        "run", "imports done s", "default model ready s", "first joke s", "all models loaded s",
        "RSS ready MB", "RSS with all models MB",
    ]  # fmt: skip
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
