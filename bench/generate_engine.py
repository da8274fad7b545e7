"""transformers `generate()` decoding the served presets: what the own loop is measured against.

Not served: `generation.gpt` decodes with its own KV-cache loop, which won by measurement
(`python -m bench.engines`). `GenerateBackend` wraps a loaded `GptBackend` (model, tokenizer, token
tables) and answers the same `generate(prompts, params, seeds)` call through `model.generate`,
with the served rules as logits processors: n-grams holding layout tokens may repeat, the first
new token may not glue onto the word (`ServedRules`), and each sampled row draws from its own
generator (`RowSampler`). Prompts are left-padded to the longest of their call, as `generate`
expects, not to `pad_width`, so a row's result may change with its batch-mates.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from generation.gpt.batch import left_pad
from generation.gpt.ngrams import ban_repeated_ngrams


class ServedRules(LogitsProcessor):
    """No-repeat n-grams with the layout tokens free, and the first-token ban at the first new
    position: `GptBackend`'s rules for `generate`."""

    def __init__(self, size: int, free: torch.Tensor, first_ban: torch.Tensor, prompt_len: int):
        self.size = size
        self.free = free
        self.first_ban = first_ban
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        vocab = scores.shape[-1]
        scores = ban_repeated_ngrams(input_ids, scores, self.size, self.free[:vocab])
        if input_ids.shape[1] == self.prompt_len:
            scores = scores.masked_fill(self.first_ban[:vocab], float("-inf"))
        return scores


class RowSampler(LogitsProcessor):
    """Sample each row's next token with that row's own generator.

    transformers samples with the global RNG, which mixes rows. This applies temperature / top-k /
    top-p itself, draws one token per row from the row's generator and returns scores where only
    that token is finite, so the `multinomial` inside `generate` can only pick it. It must be the
    last processor, and `generate` must run with its own warpers off (temperature 1, top_k 0,
    top_p 1).
    """

    def __init__(
        self, generators: Sequence[torch.Generator], temperature: float, top_p: float, top_k: int
    ) -> None:
        self.generators = list(generators)
        self.warpers = LogitsProcessorList()
        if temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        probs = torch.softmax(self.warpers(input_ids, scores.float()), dim=-1)
        chosen = torch.cat(
            [
                torch.multinomial(row, 1, generator=generator)
                for row, generator in zip(probs, self.generators, strict=True)
            ]
        )
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen[:, None], 0.0)
        return out


class GenerateBackend:
    """`GptBackend.generate`'s contract, decoded by `model.generate` (see the module docstring)."""

    def __init__(self, backend: Any, served_rules: bool = True) -> None:
        """`served_rules=False`: transformers' own no-repeat rule and no first-token ban (the
        original project's decoding)."""
        self.backend = backend
        self.served_rules = served_rules
        self.model = backend.model

    def __getattr__(self, name: str) -> Any:  # encode_prompt, decode, eos_ids, ...
        return getattr(self.backend, name)

    def warmup(self) -> None:
        self.generate(["Привет"], {"do_sample": False, "num_beams": 2, "max_new_tokens": 2}, [0])

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        encoded = [self.backend.encode_prompt(prompt) for prompt in prompts]
        with torch.inference_mode():
            if params.get("do_sample", False):
                outputs = self._sample_ids(encoded, params, seeds)
            else:
                outputs = self._beam_ids(encoded, params, seeds)
        return [self.backend.decode(ids) for ids in outputs]

    def _groups(self, encoded: Sequence[list[int]], params: Mapping[str, Any]) -> list[list[int]]:
        """Rows that may share a call: all with `max_new_tokens`; with the original's
        `max_length` (prompt included) only prompts of one length."""
        if params.get("max_new_tokens") is not None or params.get("max_length") is None:
            return [list(range(len(encoded)))]
        by_length: dict[int, list[int]] = {}
        for index, row in enumerate(encoded):
            by_length.setdefault(len(row), []).append(index)
        return list(by_length.values())

    def _call(
        self, rows: list[list[int]], params: Mapping[str, Any], extra: list[Any], **config: Any
    ) -> tuple[torch.Tensor, int]:
        backend = self.backend
        ids, mask = left_pad(rows, backend.pad_id, backend.device)
        width = ids.shape[1]
        size = int(params.get("no_repeat_ngram_size") or 0)
        processors: list[Any] = []
        if self.served_rules:
            processors.append(ServedRules(size, backend.ngram_free, backend.first_ban, width))
        generation_config = GenerationConfig(
            max_new_tokens=backend._budget(params, width),
            no_repeat_ngram_size=0 if self.served_rules else size,
            bos_token_id=backend.tokenizer.bos_token_id,
            eos_token_id=backend.eos_ids,
            pad_token_id=backend.pad_id,
            **config,
        )
        result = self.model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=generation_config,
            logits_processor=LogitsProcessorList(processors + extra),
        )
        return result, width

    def _beam_ids(
        self, encoded: Sequence[list[int]], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[list[int]]:
        num_beams = int(params.get("num_beams", 1))
        ranks = [(seed or 0) % num_beams for seed in seeds]
        outputs: list[list[int]] = [[] for _ in encoded]
        for group in self._groups(encoded, params):
            unique: dict[tuple[int, ...], int] = {}  # identical prompts are decoded once
            for index in group:
                unique.setdefault(tuple(encoded[index]), len(unique))
            returns = max(ranks[index] for index in group) + 1
            result, width = self._call(
                [list(key) for key in unique], params, [],
                do_sample=False, num_beams=num_beams, num_return_sequences=returns,
                length_penalty=float(params.get("length_penalty", 1.0)),
                early_stopping=params.get("early_stopping", False),
            )  # fmt: skip
            for index in group:
                row = unique[tuple(encoded[index])] * returns + ranks[index]
                outputs[index] = encoded[index] + result[row, width:].tolist()
        return outputs

    def _sample_ids(
        self, encoded: Sequence[list[int]], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[list[int]]:
        outputs: list[list[int]] = [[] for _ in encoded]
        for group in self._groups(encoded, params):
            chosen = [seeds[index] for index in group]
            sampler = RowSampler(
                [
                    torch.Generator().manual_seed(random.getrandbits(63) if s is None else s)
                    for s in chosen
                ],
                temperature=float(params.get("temperature", 1.0)),
                top_p=float(params.get("top_p", 1.0)),
                top_k=int(params.get("top_k") or 0),
            )
            result, width = self._call(
                [encoded[index] for index in group], params, [sampler],
                do_sample=True, num_beams=1, temperature=1.0, top_k=0, top_p=1.0,
            )  # fmt: skip
            for position, index in enumerate(group):
                outputs[index] = encoded[index] + result[position, width:].tolist()
        return outputs


__all__ = ["GenerateBackend", "RowSampler", "ServedRules"]
