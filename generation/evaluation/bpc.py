"""Bits per character of held-out jokes (test split, CleanComedy gold) under our GPT and two
count-based baselines over the same token ids, and the GPT's fluency score of any texts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generation.evaluation.baselines import tune_kneser_ney, tune_unigram
from generation.evaluation.corpus import read_jokes
from generation.evaluation.metrics import normalize_text
from generation.gpt.scoring import bits_per_char, encode_jokes, lm_sequence_bits

log = logging.getLogger(__name__)

HELD_OUT = ("test", "gold")


@dataclass
class BpcResult:
    """Bits per character per model and set, plus what the baselines were tuned to."""

    bpc: dict[str, dict[str, float]]  # model -> set -> bpc
    jokes: dict[str, int]
    chars: dict[str, int]
    tokens: dict[str, int]
    unigram_k: float
    kn_discounts: tuple[float, float, float]
    seconds: float


def pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0


def evaluate_bpc(
    models: Mapping[str, Any], tokenizer: Any, data: Path, limit: int | None = None
) -> BpcResult:
    """Bits per character of test and gold under each of `models` (name -> causal LM, all on
    `tokenizer`) and the two count-based baselines fitted on train and tuned on valid."""
    started = time.perf_counter()
    vocab = len(tokenizer)
    texts = {name: read_jokes(data / f"{name}.jsonl", limit) for name in HELD_OUT}
    valid_texts = read_jokes(data / "valid.jsonl")
    seqs = {name: encode_jokes(tokenizer, t) for name, t in texts.items()}
    valid = encode_jokes(tokenizer, valid_texts)
    train = encode_jokes(tokenizer, read_jokes(data / "train.jsonl"))
    log.info("bpc: %d train jokes, vocab %d; tuning baselines on valid", len(train), vocab)
    unigram = tune_unigram(train, valid, vocab, valid_texts)
    trigram = tune_kneser_ney(train, valid, vocab, valid_texts)
    result: dict[str, dict[str, float]] = {name: {} for name in models}
    result.update({"trigram-kn": {}, "unigram": {}})
    for name, s in seqs.items():
        log.info("bpc: scoring %d %s jokes", len(s), name)
        for model_name, model in models.items():
            bits = lm_sequence_bits(model, s, pad_id=pad_id(tokenizer))
            result[model_name][name] = bits_per_char(bits, texts[name])
        result["trigram-kn"][name] = bits_per_char(trigram.corpus_bits(s), texts[name])
        result["unigram"][name] = bits_per_char([unigram.sequence_bits(x) for x in s], texts[name])
    return BpcResult(
        bpc=result,
        jokes={name: len(t) for name, t in texts.items()},
        chars={name: sum(len(x) for x in t) for name, t in texts.items()},
        tokens={name: sum(len(x) - 1 for x in s) for name, s in seqs.items()},
        unigram_k=unigram.k,
        kn_discounts=trigram.discounts,
        seconds=time.perf_counter() - started,
    )


def fluency_scorer(model: Any, tokenizer: Any) -> Callable[[Sequence[str]], float]:
    """texts -> the model's bits per character of them (NaN for none): how much generated jokes
    read like the training jokes to our GPT."""

    def fluency(texts: Sequence[str]) -> float:
        texts = [normalize_text(t) for t in texts if t.strip()]
        if not texts:
            return float("nan")
        bits = lm_sequence_bits(model, encode_jokes(tokenizer, texts), pad_id=pad_id(tokenizer))
        return bits_per_char(bits, texts)

    return fluency


__all__ = ["BpcResult", "evaluate_bpc", "fluency_scorer", "pad_id"]
