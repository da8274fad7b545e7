"""What a tuning run was asked to do and what it did: the options and the result, as dataclasses,
so a program (the feedback-loop bench) reads the figures without parsing text."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from generation.tune.pairs import PairSettings
from generation.tune.ratings import KNOWN_METHODS
from generation.tune.train import TrainSettings


class TuneError(Exception):
    """A run that cannot start or go on; `exit_code` is what the command exits with."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class NoPairs(TuneError):
    """The ratings hold no usable preference pair: nothing to learn, no folder written."""


@dataclass(frozen=True)
class TuneConfig:
    base: Path = Path("models/gpt")
    data: Path = Path("data/prepared")  # test.jsonl: bits per character before / after
    corpus: Path = Path("../shared/data/jokes")  # gold + FUN for the judge
    judge: bool = True  # retrain the judge into <out>/judge (it reads the tuned GPT)
    train: TrainSettings = field(default_factory=TrainSettings)
    pairs: PairSettings = field(default_factory=PairSettings)
    methods: tuple[str, ...] = KNOWN_METHODS
    max_bpc_increase: float = 0.02  # bits per character; worse than this fails the guard
    bpc_limit: int | None = None  # test jokes scored (None: all)
    dtype: str = "float32"  # weights on disk; see the package docstring
    keep_checkpoint: bool = False


@dataclass
class Measures:
    """Preference and fluency figures of one model (before or after tuning)."""

    heldout_accuracy: float | None  # before: likelihood margin; after: implicit reward
    heldout_likelihood_accuracy: float | None
    heldout_loss: float | None  # mean DPO loss on held-out pairs
    train_accuracy: float | None
    bpc: float


@dataclass
class TuneResult:
    out: Path
    written: bool = False
    version: str | None = None
    base_version: str = ""
    ratings_sha256: str = ""
    input: dict[str, Any] = field(default_factory=dict)  # lines, rows, jokes, skipped, methods
    pairs: dict[str, int] = field(default_factory=dict)  # counts by kind / method / split
    train_pairs: int = 0
    heldout_pairs: int = 0
    steps: int = 0
    train_seconds: float = 0.0
    stopped_by: str = ""
    first_loss: float | None = None
    last_loss: float | None = None
    before: Measures | None = None
    after: Measures | None = None
    bpc_jokes: int = 0
    guard_failed: bool = False
    judge_version: str | None = None
    judge_error: str | None = None
    messages: list[str] = field(default_factory=list)  # what the run told its user

    @property
    def bpc_change(self) -> float | None:
        if self.before is None or self.after is None:
            return None
        return self.after.bpc - self.before.bpc

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out"] = str(self.out)
        data["bpc_change"] = self.bpc_change
        return data


__all__ = ["Measures", "NoPairs", "TuneConfig", "TuneError", "TuneResult"]
