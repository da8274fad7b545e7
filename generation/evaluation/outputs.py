"""One generated joke as the evaluation records it, and the table row of a set of them."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from generation.evaluation.metrics import continues_word, distinct_n, joke_checks, word_doubled
from generation.postprocess import model_wrote_sentence_end


@dataclass
class Output:
    """One generated joke as the user gets it, with what is known about how it was made."""

    word: str
    text: str  # "" when the service produced no usable joke
    raw: str
    latency_ms: float
    seed: int
    model_started: bool | None = None  # DiffuSeq: the model wrote the starting word itself
    natural_end: bool = True

    @classmethod
    def of(
        cls,
        word: str,
        text: str,
        raw: str,
        *,
        latency_ms: float = 0.0,
        seed: int = 0,
        model_started: bool | None = None,
    ) -> Output:
        """The output of `raw` shown as `text`; `natural_end` says whether the model itself
        wrote the sentence end the shown text stops at (not the post-processor's "…")."""
        return cls(
            word=word,
            text=text,
            raw=raw,
            latency_ms=latency_ms,
            seed=seed,
            model_started=model_started,
            natural_end=bool(text) and model_wrote_sentence_end(raw, word),
        )

    def checks(self) -> dict[str, bool]:
        c = joke_checks(self.text, self.word, self.natural_end)
        return {**asdict(c), "valid": c.valid}


def _share(outputs: Sequence[Output], test: Callable[[Output], bool]) -> float:
    return sum(1 for o in outputs if test(o)) / len(outputs) if outputs else 0.0


def summarize(
    outputs: Sequence[Output], fluency: Callable[[Sequence[str]], float] | None = None
) -> dict[str, Any]:
    """The table row of a set of outputs: check pass rates, diversity, length, latency and,
    given `fluency`, the GPT's bits per character of the texts."""
    checks = [o.checks() for o in outputs]
    n = len(outputs)

    def rate(key: str) -> float:
        return sum(c[key] for c in checks) / n if n else 0.0

    texts = [o.text for o in outputs if o.text]
    started = [o.model_started for o in outputs if o.model_started is not None]
    row: dict[str, Any] = {
        "n": n,
        "valid": rate("valid"),
        "starts": rate("starts"),
        "ends": rate("ends"),
        "no_repeat": rate("no_repeat"),
        "length_ok": rate("length_ok"),
        "empty": _share(outputs, lambda o: not o.text),
        "continues_word": _share(outputs, lambda o: continues_word(o.text, o.word)),
        "word_doubled": _share(outputs, lambda o: word_doubled(o.text, o.word)),
        "ellipsis_fallback": _share(outputs, lambda o: bool(o.text) and not o.natural_end),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_chars": statistics.fmean(len(t) for t in texts) if texts else 0.0,
        "median_latency_ms": statistics.median(o.latency_ms for o in outputs) if n else 0.0,
        "model_started": sum(started) / len(started) if started else None,
    }
    if fluency is not None:
        row["fluency_bpc"] = fluency(texts)
    return row


__all__ = ["Output", "summarize"]
