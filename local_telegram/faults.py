"""Switches that make the local Bot API server fail the way Telegram sometimes does.

Robustness tests need failures on demand and in a known order: "the next two sendMessage calls
get a 502", "the next getUpdates connection drops", "1 call in 20 fails, seed 7". Every failure
that happened is logged in `injected`, so a test can check what the bot lived through.
"""

from __future__ import annotations

import random as _random
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

FaultKind = Literal["5xx", "html5xx", "drop", "429", "delay"]
KINDS: tuple[str, ...] = ("5xx", "html5xx", "drop", "429", "delay")
#: the random mode also draws "lost": the call is carried out and its answer lost (a 502 after it)
RANDOM_KINDS: tuple[str, ...] = (*KINDS, "lost")
ANY_METHOD = "*"


@dataclass(frozen=True)
class Fault:
    """One failure to inflict on one call.

    kind: "5xx" (JSON error with `status`, like Telegram's 502 Bad Gateway), "html5xx" (an nginx
    HTML error page, which aiogram cannot decode), "drop" (the connection is closed without an
    answer), "429" (flood control with `retry_after`), "delay" (answer normally after `delay` s).
    after: for "5xx", "html5xx" and "drop", run the method first and lose only the answer, so
    the message is really sent while the bot thinks it failed (the duplicate-on-retry case).
    """

    kind: FaultKind
    status: int = 502
    retry_after: int = 1
    delay: float = 0.0
    after: bool = False


@dataclass(frozen=True)
class InjectedFault:
    method: str
    fault: Fault
    at: float  # time.monotonic()


@dataclass
class _RandomMode:
    probability: float
    kinds: tuple[str, ...]
    methods: frozenset[str] | None
    rng: _random.Random
    retry_after: int
    delay: float
    status: int


@dataclass
class FaultInjector:
    """Per-method queues of planned failures plus an optional seeded random mode."""

    _planned: dict[str, deque[Fault]] = field(default_factory=dict)
    _random: _RandomMode | None = None
    injected: list[InjectedFault] = field(default_factory=list)

    def fail_next(
        self,
        method: str,
        kind: FaultKind = "5xx",
        count: int = 1,
        *,
        retry_after: int = 1,
        delay: float = 0.0,
        status: int = 502,
        after: bool = False,
    ) -> None:
        """Make the next `count` calls of `method` ("*" = any method) fail with `kind`."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {KINDS}")
        if kind == "delay" and delay <= 0:
            raise ValueError("a 'delay' fault needs delay > 0")
        if after and kind not in ("5xx", "html5xx", "drop"):
            raise ValueError("after=True only makes sense for '5xx', 'html5xx' and 'drop'")
        fault = Fault(kind, status=status, retry_after=retry_after, delay=delay, after=after)
        queue = self._planned.setdefault(_key(method), deque())
        queue.extend([fault] * count)

    def random(
        self,
        probability: float,
        kinds: Iterable[FaultKind] = ("5xx", "drop", "429"),
        *,
        seed: int = 0,
        methods: Iterable[str] | None = None,
        retry_after: int = 1,
        delay: float = 0.5,
        status: int = 502,
    ) -> None:
        """Fail each call of `methods` (None = every method) with `probability`, reproducibly."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        chosen = tuple(kinds)
        unknown = [k for k in chosen if k not in RANDOM_KINDS]
        if unknown or not chosen:
            raise ValueError(f"bad fault kinds {chosen!r}; expected some of {RANDOM_KINDS}")
        self._random = _RandomMode(
            probability=probability,
            kinds=chosen,
            methods=frozenset(_key(m) for m in methods) if methods is not None else None,
            rng=_random.Random(seed),
            retry_after=retry_after,
            delay=delay,
            status=status,
        )

    def clear(self) -> None:
        """Forget planned failures and switch the random mode off; the log stays."""
        self._planned.clear()
        self._random = None

    def pending(self, method: str | None = None) -> int:
        """How many planned failures are still waiting (for `method`, or in all)."""
        if method is not None:
            return len(self._planned.get(_key(method), ()))
        return sum(len(q) for q in self._planned.values())

    def count(self, method: str | None = None, kind: str | None = None) -> int:
        """How many failures were inflicted, optionally only on `method` / of `kind`."""
        return sum(
            1
            for item in self.injected
            if (method is None or _key(item.method) == _key(method))
            and (kind is None or item.fault.kind == kind)
        )

    def take(self, method: str) -> Fault | None:
        """The failure for this call of `method`, if any (the server calls this once a call)."""
        fault: Fault | None = None
        for key in (_key(method), ANY_METHOD):
            queue = self._planned.get(key)
            if queue:
                fault = queue.popleft()
                break
        mode = self._random
        if (
            fault is None
            and mode is not None
            and (mode.methods is None or _key(method) in mode.methods)
        ):
            # draw twice on every eligible call so the sequence depends only on the call order
            hit = mode.rng.random() < mode.probability
            kind = mode.rng.choice(mode.kinds)
            if hit:
                fault = Fault(
                    "5xx" if kind == "lost" else kind,  # type: ignore[arg-type]
                    status=mode.status,
                    retry_after=mode.retry_after,
                    delay=mode.delay,
                    after=kind == "lost",
                )
        if fault is not None:
            self.injected.append(InjectedFault(method, fault, time.monotonic()))
        return fault


def _key(method: str) -> str:
    return method.lower()
