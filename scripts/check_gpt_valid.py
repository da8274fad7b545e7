#!/usr/bin/env python
"""Re-check of the `gpt` preset after the attribution fix: the 200 test words + 50 nouns of
docs/QUALITY.md, post-processed as the service does; counts the '…' fallback and the checks."""

from pathlib import Path

import generation.evaluate as generation_evaluate
from generation.evaluate import COMMON_NOUNS as NOUNS
from generation.evaluate import joke_checks, model_wrote_sentence_end, starting_words
from generation.postprocess import clean_joke
from generation.registry import build_registry
from settings import Settings

texts = generation_evaluate.read_jokes(Path("data/prepared/test.jsonl"))
words = starting_words(texts, 200, exclude=NOUNS) + list(NOUNS)
registry = build_registry(Settings(_env_file=None))
backend, params = registry.backend("gpt"), registry.method("gpt").params
ok = ends = n = 0
for i in range(0, len(words), 32):
    batch = words[i : i + 32]
    for word, raw in zip(batch, backend.generate(batch, params, [0] * len(batch)), strict=True):
        text = clean_joke(raw, word)
        natural = bool(text) and model_wrote_sentence_end(raw, word)
        checks = joke_checks(text, word, natural)
        n += 1
        ends += natural
        ok += bool(checks.valid)
print(f"gpt: {n} words, valid {ok / n:.1%}, model-written sentence end {ends / n:.1%}")
