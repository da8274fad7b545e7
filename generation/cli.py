"""Command line: write jokes from a starting word without the bot.

    python -m generation "Молоко" --method gpt -n 3     # three different jokes, one per line
    python -m generation "Молоко" --method gpt-sample --seed 7 --json
    python -m generation --method gpt --json < words.txt   # one JSON line per starting word
    python -m generation --list

With no prompt argument the starting words come from standard input, one per line (blank lines
skipped), and are all submitted at once to one service, which batches them: an evaluation of 200
words is one process and a few batched model calls, not 200 starts. The output keeps their order;
with --json each line carries its word in `prompt` (and `error` for a word that got no joke).

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
from typing import Any

from generation.config import GenerationConfig
from generation.registry import GPT, MethodRegistry, build_registry
from generation.service import GenerationService
from generation.types import GenerationError, GenerationRequest, Joke


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m generation", description="Write short Russian jokes from a starting word."
    )
    parser.add_argument(
        "prompt", nargs="?", help="the starting word(s), e.g. Молоко (default: one per stdin line)"
    )
    parser.add_argument("--method", "-m", default=None, help="generation method (see --list)")
    parser.add_argument("-n", "--count", type=int, default=1, help="number of jokes")
    parser.add_argument("--seed", type=int, default=None, help="seed (sampling) / variant (beam)")
    parser.add_argument("--json", action="store_true", help="one JSON object per joke")
    parser.add_argument("--list", action="store_true", help="list the methods and exit")
    parser.add_argument("--timeout", type=float, default=None, help="seconds (default: settings)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log model loading")
    return parser


def joke_record(joke: Joke, prompt: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = {} if prompt is None else {"prompt": prompt}
    record.update(
        text=joke.text,
        method=joke.method,
        model=joke.model,
        params=dict(joke.params),
        latency_ms=round(joke.latency_ms, 1),
        rank=joke.rank,
        candidates=joke.candidates,
        judge_score=None if joke.judge_score is None else round(joke.judge_score, 4),
        judge_version=joke.judge_version,
        ended=joke.ended,
    )
    return record


def format_joke(joke: Joke, as_json: bool, prompt: str | None = None) -> str:
    if as_json:
        return json.dumps(joke_record(joke, prompt), ensure_ascii=False)
    return " ".join(joke.text.split())  # one joke per line: a dialogue's turns joined by spaces


def _missing_model(config: GenerationConfig, registry: MethodRegistry, method: str) -> str | None:
    """A clear message when the method's local model folder does not exist, else None."""
    if registry.method(method).backend_key != GPT:
        return None
    model = config.gpt_model
    looks_local = model.startswith((".", "/", "~")) or model.count("/") != 1
    if looks_local and not Path(model).expanduser().exists():
        return (
            f"GPT model folder not found: {model}\n"
            "Train one (python -m generation.training.train_gpt ...) or point GPT_MODEL at a "
            "model folder "
            "or hub name (e.g. GPT_MODEL=abletobetable/gpt-short-jokes "
            "GPT_TOKENIZER=sberbank-ai/rugpt3small_based_on_gpt2)."
        )
    return None


async def _run(
    registry: MethodRegistry,
    config: GenerationConfig,
    request: GenerationRequest,
    timeout: float | None,
) -> list[Joke]:
    service = GenerationService.from_config(
        registry, config, batch_window_ms=0.0, preload=[request.method]
    )
    await service.start()
    try:
        return (await service.generate(request, timeout=timeout))[: request.count]
    finally:
        await service.stop()


async def _run_many(
    registry: MethodRegistry,
    config: GenerationConfig,
    requests: Sequence[GenerationRequest],
    timeout: float | None,
) -> list[list[Joke] | GenerationError]:
    """All requests at once through one service (it batches them); results in request order.

    Nothing is turned away as busy: the whole list is the work, so the queue holds all of it
    and each request waits as long as the list takes, unless `timeout` says otherwise.
    """
    service = GenerationService.from_config(
        registry,
        config,
        preload=[requests[0].method],
        queue_depth=len(requests) + 1,
        timeout_s=timeout or 24 * 3600.0,
        admit_by_backlog=False,
    )
    await service.start()
    try:
        results = await asyncio.gather(
            *(service.generate(request) for request in requests), return_exceptions=True
        )
    finally:
        await service.stop()
    out: list[list[Joke] | GenerationError] = []
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, BaseException) and not isinstance(result, GenerationError):
            raise result
        out.append(result if isinstance(result, GenerationError) else result[: request.count])
    return out


def _print_many(
    words: Sequence[str], results: Sequence[list[Joke] | GenerationError], as_json: bool
) -> int:
    failed = 0
    for word, result in zip(words, results, strict=True):
        if isinstance(result, GenerationError):
            failed += 1
            line = {"prompt": word, "error": str(result)}
            print(json.dumps(line, ensure_ascii=False) if as_json else f"{word}\t(error: {result})")
            continue
        for joke in result:
            print(format_joke(joke, as_json, word))
    return 1 if failed == len(words) else 0


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
    config = settings.generation()
    registry = build_registry(config)
    if args.list:
        for info in registry.methods():
            params = json.dumps(info.params, ensure_ascii=False, sort_keys=True)
            print(f"{info.name}\t{info.display_name}\t{params}")
        return 0
    words: list[str] = []
    if args.prompt is None:
        if sys.stdin is None or sys.stdin.isatty():
            parser.error("give a prompt, or starting words on standard input (or --list)")
        words = [line.strip() for line in sys.stdin if line.strip()]
        if not words:
            parser.error("no starting words on standard input")
    elif not args.prompt.strip():
        parser.error("a prompt is required (or --list)")
    if args.count < 1:
        parser.error("-n must be at least 1")
    method = args.method or settings.default_method
    if method not in registry:
        parser.error(f"unknown method {method!r}; known: {', '.join(registry.names())}")
    if registry.method(method).lookup:  # stored jokes: no best of N, so no models to load
        config = config.but(best_of_n=False)
    missing = _missing_model(config, registry, method)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2

    if words:
        requests = [
            GenerationRequest(prompt=w, method=method, count=args.count, seed=args.seed)
            for w in words
        ]
        try:
            results = asyncio.run(_run_many(registry, config, requests, args.timeout))
        except GenerationError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        return _print_many(words, results, args.json)
    request = GenerationRequest(prompt=args.prompt, method=method, count=args.count, seed=args.seed)
    try:
        jokes = asyncio.run(_run(registry, config, request, args.timeout))
    except GenerationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for joke in jokes:
        print(format_joke(joke, args.json))
    return 0


__all__ = ["build_parser", "format_joke", "main"]
