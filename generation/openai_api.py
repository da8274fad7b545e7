"""The JSON of the OpenAI-compatible completions API, both ways: what `generation.server` reads
and writes, and what `generation.remote` sends and makes of the answers.

Why this protocol: a GPT can then be served by any OpenAI-compatible server (vLLM on a GPU
machine) with no code of ours, while our own server (`python -m generation.server`) serves every
method with the in-process batching, best of N and admission. Our additions ride in fields
prefixed `x_` that other servers leave out and other clients ignore:

* request: `x_exclude` (a lookup method's seen jokes, `GenerationRequest.exclude`), `x_timeout_s`
  (the caller's remaining time, so the server's admission judges by it);
* response: every choice carries `x_joke` (the full `Joke` record: model version, params, rank,
  judge); a lookup with nothing for the prompt answers `choices: []` with `x_nothing_found`;
* models: each entry carries `x_method` (display name, preset, N, ...), the list `x_service`
  (best of N, how jokes are picked, a running experiment's arms).

A plain server's choices are post-processed here as the worker would (`clean_joke`), and what
it cannot say (rank, judge) is left at "first of the draw" and None.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from generation.postprocess import clean_joke, model_wrote_sentence_end, normalize_whitespace
from generation.types import (
    GenerationError,
    GenerationRequest,
    GenerationTimeout,
    Joke,
    NothingFound,
    UnknownMethod,
)

#: at most this many rows one request may ask for (`n`), and characters of its prompt
MAX_N = 32
MAX_PROMPT_CHARS = 1000
MAX_EXCLUDE = 100_000
OWNER = "funny-and-tochka"


class BadRequest(ValueError):
    """The request cannot be served as written: HTTP 400 with an OpenAI-style error."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ReplicaFailure(Exception):
    """One replica failed (unreachable, 5xx, an answer that is not a completion): ask another."""


class ReplicaBusy(Exception):
    """One replica is too busy to take the request in time (503/429): ask another."""


# -- the server's side -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ask:
    request: GenerationRequest
    timeout_s: float | None  # the caller's time left (x_timeout_s), if it said


def parse_completion(body: Any) -> Ask:
    """A POST /v1/completions body as a request; BadRequest says what is wrong."""
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("`model` (the method's name) is required", "model")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt.strip():
        raise BadRequest("`prompt` must be one non-empty string", "prompt")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BadRequest(f"`prompt` is longer than {MAX_PROMPT_CHARS} characters", "prompt")
    if body.get("stream"):
        raise BadRequest("streaming is not supported", "stream")
    n = _integer(body, "n", 1, 1, MAX_N)
    seed = body.get("seed")
    if seed is not None:
        seed = _integer(body, "seed", 0, 0, 2**62)
    exclude = body.get("x_exclude") or []
    if not isinstance(exclude, list) or len(exclude) > MAX_EXCLUDE:
        raise BadRequest(f"`x_exclude` must be a list of at most {MAX_EXCLUDE} ids", "x_exclude")
    if not all(isinstance(item, str) for item in exclude):
        raise BadRequest("`x_exclude` must hold strings", "x_exclude")
    timeout = body.get("x_timeout_s")
    if timeout is not None and not (_number(timeout) and 0 < timeout <= 3600):
        raise BadRequest("`x_timeout_s` must be a number of seconds in (0, 3600]", "x_timeout_s")
    request = GenerationRequest(prompt, model, count=n, seed=seed, exclude=tuple(exclude))
    return Ask(request, None if timeout is None else float(timeout))


def _integer(body: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"`{name}` must be an integer from {low} to {high}", name)
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def joke_fields(joke: Joke) -> dict[str, Any]:
    """`x_joke`: what the bot stores of a joke, exactly as the service made it."""
    return {
        "text": joke.text,
        "method": joke.method,
        "model": joke.model,
        "params": dict(joke.params),
        "latency_ms": joke.latency_ms,
        "rank": joke.rank,
        "candidates": joke.candidates,
        "judge_score": joke.judge_score,
        "judge_version": joke.judge_version,
        "ended": joke.ended,
    }


def continuation(text: str, prompt: str) -> str:
    """The OpenAI `text` of a choice: the joke after the prompt (echo off)."""
    if text.casefold().startswith(prompt.casefold()):
        return text[len(prompt) :]
    return text


def completion_body(
    request: GenerationRequest, jokes: Sequence[Joke], *, nothing_found: bool = False
) -> dict[str, Any]:
    """A text_completion object: the draw's jokes, best first, one choice each."""
    body: dict[str, Any] = {
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": request.method,
        "choices": [
            {
                "index": index,
                "text": continuation(joke.text, normalize_whitespace(request.prompt)),
                "logprobs": None,
                "finish_reason": "stop" if joke.ended else "length",
                "x_joke": joke_fields(joke),
            }
            for index, joke in enumerate(jokes)
        ],
    }
    if nothing_found:
        body["x_nothing_found"] = True
    return body


def error_body(
    message: str, kind: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style error object."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def model_entry(
    name: str, display_name: str, params: Mapping[str, Any], model_id: str | None, **more: Any
) -> dict[str, Any]:
    """One /v1/models entry; `more`: deterministic, candidates, lookup, version_of."""
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": OWNER,
        "x_method": {
            "display_name": display_name,
            "params": dict(params),
            "model_id": model_id,
            **more,
        },
    }


# -- the client's side -------------------------------------------------------------------------


def parse_urls(text: str | None) -> tuple[str, ...]:
    """GENERATION_URL: one or more http(s) base URLs, comma-separated; a trailing /v1 or / is
    dropped (the paths are added here). ValueError says what is wrong."""
    urls = []
    for part in (text or "").split(","):
        url = part.strip().rstrip("/")
        if not url:
            continue
        if not url.startswith(("http://", "https://")) or "?" in url or "#" in url:
            raise ValueError(f"expected http(s):// base URLs of generation servers, got {url!r}")
        url = url.removesuffix("/v1")
        if url not in urls:
            urls.append(url)
    return tuple(urls)


def read_answer(status: int, text: str, retry_after: str | None) -> dict[str, Any]:
    """A completion answer as its JSON object; raises the caller's error for a final answer, or
    ReplicaBusy/ReplicaFailure for one another replica may answer better."""
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    code, message = error.get("code"), str(error.get("message") or text[:200])
    if status == 200:
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            raise ReplicaFailure(f"not a completion: {text[:200]!r}")
        return payload
    if status == 429 or (status == 503 and (code == "busy" or retry_after is not None)):
        raise ReplicaBusy(message)
    if status == 404 and code == "model_not_found":
        raise UnknownMethod(message)
    if status == 504 and code == "timeout":
        raise GenerationTimeout(message)
    if status == 500 and code == "generation_failed":
        raise GenerationError(message)  # the draw itself: nothing acceptable, not the replica
    if 400 <= status < 500 and status not in (404, 408):
        raise GenerationError(f"the generation server refused the request ({status}): {message}")
    raise ReplicaFailure(f"HTTP {status}: {message}")


def jokes_of(
    payload: Mapping[str, Any],
    request: GenerationRequest,
    sent: Mapping[str, Any],
    latency_ms: float,
    max_chars: int,
) -> list[Joke]:
    """The answer's choices as jokes, best first. `sent`: the sampling fields of the request (a
    plain choice's params). NothingFound for a lookup's empty answer; ReplicaFailure when no
    choice is a usable joke."""
    choices = payload["choices"]
    prompt = normalize_whitespace(request.prompt)
    if not choices and payload.get("x_nothing_found") is True:
        raise NothingFound(f"no stored joke for {request.prompt!r}")
    if not all(isinstance(choice, dict) for choice in choices):
        raise ReplicaFailure("choices must be objects")
    served = payload.get("model")
    model = served if isinstance(served, str) and served else request.method
    jokes: list[Joke] = []
    seen: set[str] = set()
    for choice in sorted(choices, key=_index):
        joke = _joke_of(choice, prompt, request.method, model, sent, max_chars)
        if joke is not None and joke.text not in seen:
            seen.add(joke.text)
            jokes.append(joke)
    if not jokes:
        raise ReplicaFailure(f"no usable joke in the answer ({len(choices)} choices)")
    rows = len(choices)
    return [
        Joke(
            text=joke.text,
            method=request.method,
            model=joke.model,
            params=joke.params,
            latency_ms=latency_ms,
            rank=joke.rank if joke.rank >= 0 else rank,
            candidates=joke.candidates if joke.candidates > 0 else rows,
            judge_score=joke.judge_score,
            judge_version=joke.judge_version,
            ended=joke.ended,
        )
        for rank, joke in enumerate(jokes)
    ]


def _index(choice: Mapping[str, Any]) -> float:
    index = choice.get("index")
    return index if _number(index) else 0


def _joke_of(
    choice: Mapping[str, Any],
    prompt: str,
    method: str,
    model: str,
    sent: Mapping[str, Any],
    max_chars: int,
) -> Joke | None:
    """One choice: our server's `x_joke` as it is, or a plain choice post-processed here."""
    extra = choice.get("x_joke")
    if isinstance(extra, dict):
        text = _typed(extra, "text", str, None)
        if not text:
            raise ReplicaFailure("x_joke without its text")
        score = _typed(extra, "judge_score", float, None)
        return Joke(
            text=text,
            method=method,
            model=_typed(extra, "model", str, model) or model,
            params=_typed(extra, "params", dict, dict(sent)),
            latency_ms=0.0,
            rank=_typed(extra, "rank", int, -1),
            candidates=_typed(extra, "candidates", int, 0),
            judge_score=None if score is None else float(score),
            judge_version=_typed(extra, "judge_version", str, None),
            ended=_typed(extra, "ended", bool, choice.get("finish_reason") == "stop"),
        )
    written = choice.get("text")
    if not isinstance(written, str):
        raise ReplicaFailure("a choice without its text")
    raw = prompt + written
    text = clean_joke(raw, prompt, max_chars)
    if not text:
        return None
    ended = model_wrote_sentence_end(raw, prompt)
    return Joke(text, method, model, dict(sent), 0.0, -1, 0, None, None, ended)


def _typed(extra: Mapping[str, Any], name: str, kind: type, default: Any) -> Any:
    """A field of `x_joke` of the expected type; missing or null: `default`; else garbage."""
    value = extra.get(name)
    if value is None:
        return default
    if kind is float and _number(value):
        return value
    if isinstance(value, bool) and kind is not bool:
        raise ReplicaFailure(f"x_joke.{name} has the wrong type")
    if not isinstance(value, kind):
        raise ReplicaFailure(f"x_joke.{name} has the wrong type")
    return value


__all__ = [
    "MAX_N",
    "Ask",
    "BadRequest",
    "ReplicaBusy",
    "ReplicaFailure",
    "completion_body",
    "error_body",
    "jokes_of",
    "model_entry",
    "parse_completion",
    "parse_urls",
    "read_answer",
]
