"""What the GPT's last beam search said about the jokes it wrote: their bits, without a pass.

The judge's fluency feature is the bits the GPT spends on `<|endoftext|> joke <|endoftext|>`
(`generation.judge.features.gpt_pass`), one forward pass over the candidates. The beam search has
computed each of those log-probabilities already, on the way to writing the joke
(`generation.gpt.beam.BeamTrace`), so for a candidate that is the search's own text, or the start
of it that the post-processor kept (cut at a sentence end), the figure is read from the search.

It is the same model's figure up to float rounding: the search's cached, left-padded steps and the
pass's padded batch run it through differently shaped kernels, which moves the last bits of some
activations, and int8 activation quantization now and then turns that into a step. Measured on the
shipped model over the evaluation words: for a few words the judge picked another of the same
candidates, and the reader's figures of the shown jokes did not move.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from generation.gpt.beam import BeamTrace


@dataclass(frozen=True)
class _Written:
    text: str  # as `generate` returned it
    prompt: list[int]  # the prompt's ids, its leading end-of-text included
    tokens: list[int]  # the new ids, a closing end-of-text included when the search wrote one
    trace: BeamTrace


class WrittenBits:
    """The hypotheses of the last `generate` call, and the bits of texts they hold."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._written: list[_Written] = []

    def clear(self) -> None:
        self._written = []

    def add(self, text: str, prompt: list[int], tokens: list[int], trace: BeamTrace) -> None:
        self._written.append(_Written(text, list(prompt), list(tokens), trace))

    def bits(self, texts: Sequence[str]) -> list[float | None]:
        """Per text, the bits of `<|endoftext|> text <|endoftext|>` if a hypothesis holds it as
        its first tokens (tokenized as a scorer tokenizes the text), else None."""
        return [self._bits_of(text) for text in texts]

    def _bits_of(self, text: str) -> float | None:
        ids: list[int] | None = None
        for written in self._written:
            if not written.text.startswith(text):
                continue
            if ids is None:
                ids = self.tokenizer.encode(text, add_special_tokens=False)
            prompt = written.prompt[1:]
            kept = ids[len(prompt) :]
            if ids[: len(prompt)] != prompt or written.tokens[: len(kept)] != kept:
                continue
            log_prob = written.trace.log_prob(len(kept))
            if log_prob is not None and math.isfinite(log_prob):
                return -log_prob / math.log(2)
        return None


__all__ = ["WrittenBits"]
