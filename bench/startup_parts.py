"""Where cold start goes: each start-up piece timed in one fresh process, in the bot's order.

    python -m bench.startup_parts

Imports of the bot stack, torch, transformers; loading and int8-packing the shipped GPT (the first
`from_pretrained` also imports transformers' GPT-2 model code); warm-up; one `gpt` beam joke.
No Telegram traffic and no database, so the sum is a floor under `bench.cold_start`. Garbage
collection is paused, as in the bot (`bot/startup_gc.py`). Not a test.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    import argparse  # not bench.common: that imports settings, part of what is timed below

    parser = argparse.ArgumentParser(prog="python -m bench.startup_parts", description=__doc__)
    parser.parse_args(argv)
    from bot.startup_gc import pause_collection

    pause_collection()  # as `python -m bot` does before its imports
    marks: list[tuple[str, float]] = []
    last = STARTED

    def mark(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        marks.append((name, now - last))
        last = now

    import bot.app
    import bot.dispatcher  # noqa: F401

    mark("import the bot stack (aiogram, SQLAlchemy, settings, ...)")
    import torch  # noqa: F401

    mark("import torch")
    import transformers  # noqa: F401

    mark("import transformers")
    from generation.config import GenerationConfig
    from generation.gpt.backend import GptBackend
    from generation.registry import gpt_presets
    from settings import ROOT

    backend = GptBackend.from_pretrained(ROOT / "models" / "gpt", quantize="int8")
    mark("load + int8-pack models/gpt (imports the GPT-2 model code)")
    backend.warmup()
    mark("warm-up")
    backend.generate(["Молоко"], gpt_presets(GenerationConfig.defaults())["gpt"], [0])
    mark("first gpt (beam) joke")
    print("| piece | s |\n|---|---|")
    for name, seconds in marks:
        print(f"| {name} | {seconds:.2f} |")
    print(f"| total | {time.perf_counter() - STARTED:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
