"""Command line: write jokes from a starting word without the bot.

    python -m generation "Молоко" --method gpt -n 3     # one joke per line
    python -m generation "Молоко" --method gpt-sample --seed 7 --json
    python -m generation --list

Model paths and decoding settings come from `settings.get_settings()` (GPT_MODEL, GPT_TOKENIZER,
GPT_MAX_NEW_TOKENS, ... in the environment or `.env`). It runs the same `GenerationService` as the
bot, so what it prints is what the bot would send. Exit codes: 0 ok, 1 generation failed,
2 usage error or missing model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from generation.registry import GPT, MethodRegistry, build_registry
from generation.service import GenerationService
from generation.types import GenerationError, GenerationRequest, Joke


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generation", description="Write short Russian jokes from a starting word."
    )
    parser.add_argument("prompt", nargs="?", help="the starting word(s), e.g. Молоко")
    parser.add_argument("--method", "-m", default=None, help="generation method (see --list)")
    parser.add_argument("-n", "--count", type=int, default=1, help="number of jokes")
    parser.add_argument("--seed", type=int, default=None, help="seed (sampling) / variant (beam)")
    parser.add_argument("--json", action="store_true", help="one JSON object per joke")
    parser.add_argument("--list", action="store_true", help="list the methods and exit")
    parser.add_argument("--timeout", type=float, default=None, help="seconds (default: settings)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading")
    return parser


def format_joke(joke: Joke, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            {
                "text": joke.text,
                "method": joke.method,
                "model": joke.model,
                "params": dict(joke.params),
                "latency_ms": round(joke.latency_ms, 1),
            },
            ensure_ascii=False,
        )
    return " ".join(joke.text.split())  # one joke per line: a dialogue's turns joined by spaces


def _missing_model(settings: object, registry: MethodRegistry, method: str) -> str | None:
    """A clear message when the method's local model folder does not exist, else None."""
    if registry.method(method).backend_key != GPT:
        return None
    model = str(getattr(settings, "gpt_model", ""))
    looks_local = model.startswith((".", "/", "~")) or model.count("/") != 1
    if looks_local and not Path(model).expanduser().exists():
        return (
            f"GPT model folder not found: {model}\n"
            "Train one (python -m generation.train_gpt ...) or point GPT_MODEL at a model folder "
            "or hub name (e.g. GPT_MODEL=abletobetable/gpt-short-jokes "
            "GPT_TOKENIZER=sberbank-ai/rugpt3small_based_on_gpt2)."
        )
    return None


async def _run(
    registry: MethodRegistry, settings: object, request: GenerationRequest, timeout: float | None
) -> list[Joke]:
    service = GenerationService.from_config(
        registry, settings, batch_window_ms=0.0, preload=[request.method]
    )
    await service.start()
    try:
        return await service.generate(request, timeout=timeout)
    finally:
        await service.stop()


def _quiet_libraries(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:  # pragma: no cover - transformers is a hard dependency
            return
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_libraries(args.verbose)

    from settings import get_settings  # CLIs may read settings; library code takes arguments

    settings = get_settings()
    registry = build_registry(settings)
    if args.list:
        for info in registry.methods():
            params = json.dumps(info.params, ensure_ascii=False, sort_keys=True)
            print(f"{info.name}\t{info.display_name}\t{params}")
        return 0
    if not args.prompt or not args.prompt.strip():
        parser.error("a prompt is required (or --list)")
    if args.count < 1:
        parser.error("-n must be at least 1")
    method = args.method or getattr(settings, "default_method", GPT)
    if method not in registry:
        parser.error(f"unknown method {method!r}; known: {', '.join(registry.names())}")
    missing = _missing_model(settings, registry, method)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2

    request = GenerationRequest(prompt=args.prompt, method=method, count=args.count, seed=args.seed)
    try:
        jokes = asyncio.run(_run(registry, settings, request, args.timeout))
    except GenerationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for joke in jokes:
        print(format_joke(joke, args.json))
    return 0


__all__ = ["build_parser", "format_joke", "main"]
