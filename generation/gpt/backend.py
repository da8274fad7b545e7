"""The GPT backend: a transformers causal LM that continues the user's words into a joke.

Loaded once (`GptBackend.from_pretrained`), then called from the generation worker's thread with
batches of prompts, decoded by the KV-cache loop of `generation.gpt.decoding`. Two decoding
families, chosen by the method's preset (`generation.registry`):

* beam search (`do_sample=False`, the original project's `gpt` method) — deterministic; the row's
  seed is read as a variant index (0 = best beam, 1 = second best, ...), so that several rows of
  one prompt give different jokes, as the original's `num_return_sequences` did; identical
  prompts share one search;
* sampling (`do_sample=True`, `gpt-sample`) — every row draws from its own `torch.Generator`
  seeded with the row's seed (`SeededSampler`), so a seeded joke is the same whatever else shares
  its batch.

Both apply the served rules: no repeated n-gram (`no_repeat_ngram_size`) except those holding a
joke's layout tokens (line breaks, dialogue dashes), and no first new token that glues letters
onto the prompt's last word. Every prompt is left-padded to `pad_width` of its own length and a
row carries its own token budget, so all rows of a width go in one call and a row's result does not
depend on its batch-mates.

Our own model is trained on `<|endoftext|> joke <|endoftext|>`, so its prompts start with the bos
token; the original hub model was not, so its prompts do not. A `"prepend_bos"` key in the model's
`config.json` or `generation_config.json` decides; without one, a `train_summary.json` in the model
folder (written by `generation.training.train_gpt`) means our model; the caller can force either
way.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, GenerationConfig, PreTrainedTokenizerBase

from generation.gpt.batch import pad_width
from generation.gpt.beam import BeamTrace
from generation.gpt.copy_guard import CopyGuard, token_bytes
from generation.gpt.decoding import FastDecoder
from generation.gpt.loading import (
    check_folders,
    detect_prepend_bos,
    load_tokenizer,
    model_id_of,
    resolve_dtype,
)
from generation.gpt.quantize import apply_quantization
from generation.gpt.sampler import SeededSampler
from generation.gpt.written import WrittenBits

log = logging.getLogger(__name__)

#: Decoding parameters a preset may set; anything else is a typo and is refused.
KNOWN_PARAMS = frozenset(
    {
        "do_sample",
        "num_beams",
        "no_repeat_ngram_size",
        "max_length",
        "max_new_tokens",
        "temperature",
        "top_p",
        "top_k",
        "length_penalty",
        "early_stopping",
    }
)


def _width_groups(rows: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    """Row indices by padded prompt width (`pad_width`): rows that may share one decoder call
    without changing each other's output (a single word always lands in the first group)."""
    groups: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(pad_width(len(row)), []).append(index)
    return groups


class GptBackend:
    """A loaded causal LM + tokenizer implementing the `Backend` protocol."""

    def __init__(
        self,
        model: Any,
        tokenizer: PreTrainedTokenizerBase,
        *,
        model_id: str,
        prepend_bos: bool = False,
        device: str | torch.device = "cpu",
        one_thread_below_rows: int | None = None,
    ) -> None:
        """`one_thread_below_rows`: see `FastDecoder`."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_id = model_id
        self.device = torch.device(device)
        self.eos_ids = self._eos_ids()
        pad = tokenizer.pad_token_id
        self.pad_id: int = pad if pad is not None else self.eos_ids[0]
        self.bos_id: int | None = tokenizer.bos_token_id if prepend_bos else None
        if prepend_bos and self.bos_id is None:
            log.warning("%s: prepend_bos is set but the tokenizer has no bos token", model_id)
        # Our presets are the whole truth about decoding: nothing from the saved generation config
        # (a stray top_k, max_length, repetition_penalty) may leak into a call.
        self.model.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=self.eos_ids,
            pad_token_id=self.pad_id,
        )
        self.fast = FastDecoder(
            self.model,
            pad_id=self.pad_id,
            eos_ids=self.eos_ids,
            one_thread_below_rows=one_thread_below_rows,
        )
        self.first_ban = self._word_gluing_tokens()
        self.fast.ngram_free = self.ngram_free = self._layout_tokens()
        self.copy_guard: CopyGuard | None = None
        # what the last beam search said about its jokes (`search_bits`); only for a model whose
        # prompts start with the end-of-text token a scorer puts before a joke
        self.written = WrittenBits(tokenizer)
        self._traced = self.bos_id is not None and self.bos_id == tokenizer.eos_token_id

    def _layout_tokens(self) -> torch.Tensor:
        """Tokens of a joke's layout: line breaks and dialogue dashes. N-grams holding them may
        repeat under `no_repeat_ngram_size` (every turn of a dialogue starts with them)."""
        size = int(self.model.config.vocab_size)
        free = torch.zeros(size, dtype=torch.bool)
        for token_id in range(min(size, len(self.tokenizer))):
            text = self.tokenizer.decode([token_id])
            if "\n" in text or (text.strip() and not text.strip().strip("-–—")):
                free[token_id] = True
        return free.to(self.device)

    def _word_gluing_tokens(self) -> torch.Tensor:
        """Tokens that may not come first after the prompt: those that glue letters or digits
        onto its last word ("Муж" + "чина") and eos (an empty joke).

        The joke must begin with the user's word as a word; left free, the model continued the
        word in a good share of all jokes (docs/QUALITY.md). Computed once per model.
        """
        size = int(self.model.config.vocab_size)
        ban = torch.zeros(size, dtype=torch.bool)
        special = set(self.tokenizer.all_special_ids)
        for token_id in range(min(size, len(self.tokenizer))):
            if token_id in special:
                continue
            text = self.tokenizer.decode([token_id])
            if text[:1].isalnum():
                ban[token_id] = True
        ban[self.eos_ids] = True
        return ban.to(self.device)

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path,
        tokenizer: str | Path | None = None,
        device: str = "cpu",
        dtype: torch.dtype | str | None = "float32",
        threads: int | None = None,
        *,
        prepend_bos: bool | None = None,
        model_id: str | None = None,
        quantize: str | None = None,
        one_thread_below_rows: int | None = None,
    ) -> GptBackend:
        """Load a model folder or hub name; the tokenizer from `tokenizer` or the model's place.

        `prepend_bos=None` detects it (see the module docstring).
        `threads` sets torch's intra-op threads (a process-wide setting); None or 0 leaves it.
        `quantize`: "int8" (row-wise, batch-invariant, CPU), "int8-fbgemm", "bf16", None/"none"; see
        `generation.gpt.quantize`.
        """
        if threads:
            torch.set_num_threads(threads)
        check_folders(model, tokenizer)
        tok = load_tokenizer(str(tokenizer or model), named=tokenizer is not None)
        lm = AutoModelForCausalLM.from_pretrained(str(model), dtype=resolve_dtype(dtype))
        lm.to(device)
        lm = apply_quantization(lm.eval(), quantize)
        if prepend_bos is None:
            prepend_bos = detect_prepend_bos(model, lm)
        backend = cls(
            lm,
            tok,
            model_id=model_id or model_id_of(model, tokenizer),
            prepend_bos=prepend_bos,
            device=device,
            one_thread_below_rows=one_thread_below_rows,
        )
        log.info(
            "loaded %s (%s, %s, quantize=%s, prepend_bos=%s, %d threads)",
            backend.model_id,
            device,
            resolve_dtype(dtype),
            quantize or "none",
            prepend_bos,
            torch.get_num_threads(),
        )
        return backend

    # -- Backend protocol ------------------------------------------------------------------------

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        unknown = set(params) - KNOWN_PARAMS
        if unknown:
            raise ValueError(f"unknown decoding parameters: {sorted(unknown)}")
        if not prompts:
            return []
        encoded = [self.encode_prompt(prompt) for prompt in prompts]
        self.written.clear()
        with torch.inference_mode():
            if params.get("do_sample", False):
                outputs = self._sample_ids(encoded, params, seeds)
            else:
                outputs = self._beam_ids(encoded, params, seeds)
        return [self.decode(ids) for ids in outputs]

    def warmup(self) -> None:
        """Run both decoding families once, so allocations happen before the first user."""
        sample = {"do_sample": True, "max_new_tokens": 2, "top_p": 0.9, "no_repeat_ngram_size": 2}
        beam = {"do_sample": False, "num_beams": 2, "max_new_tokens": 2, "no_repeat_ngram_size": 2}
        self.generate(["Привет", "Шутка дня"], sample, [0, 1])
        self.generate(["Привет"], beam, [0])

    def avoid_copies(self, index: Any) -> None:
        """Beam search closes continuations that enter a training joke of this copy index
        (`generation.gpt.copy_guard`); None searches freely. Called by the worker before each
        call with the reader's checks' index, so a model loaded later gets it too."""
        if index is None:
            self.copy_guard = None
        elif self.copy_guard is None or self.copy_guard.index is not index:
            pieces = token_bytes(self.tokenizer, int(self.model.config.vocab_size))
            self.copy_guard = CopyGuard(index, pieces)

    # -- pieces ----------------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> list[int]:
        ids = self.tokenizer.encode(" ".join(prompt.split()), add_special_tokens=False)
        return ([self.bos_id] if self.bos_id is not None else []) + list(ids)

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(
            list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False
        )

    def _eos_ids(self) -> list[int]:
        """End-of-text ids: the tokenizer's eos, plus the model's if that one is a special token."""
        ids: list[int] = []
        if self.tokenizer.eos_token_id is not None:
            ids.append(self.tokenizer.eos_token_id)
        model_eos = getattr(self.model.generation_config, "eos_token_id", None)
        if model_eos is None:
            model_eos = getattr(self.model.config, "eos_token_id", None)
        candidates = model_eos if isinstance(model_eos, list) else [model_eos]
        special = set(self.tokenizer.all_special_ids)
        ids += [i for i in candidates if i is not None and i in special and i not in ids]
        if not ids:
            raise ValueError(f"{self.model_id}: neither the tokenizer nor the model names an eos")
        return ids

    def _budget(self, params: Mapping[str, Any], prompt_len: int) -> int:
        """New tokens for a prompt: `max_new_tokens`, or the original's `max_length`, which
        counts the prompt's tokens too."""
        if params.get("max_new_tokens") is not None:
            return int(params["max_new_tokens"])
        if params.get("max_length") is not None:
            return max(1, int(params["max_length"]) - prompt_len)
        return 32

    # -- decoding: one call per prompt width, each row with its own token budget -----------------

    def _beam_ids(
        self, encoded: Sequence[list[int]], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[list[int]]:
        num_beams = int(params.get("num_beams", 1))
        ranks = [(seed or 0) % num_beams for seed in seeds]
        # Identical prompts are decoded once; their rows take different ranks of the result.
        unique: dict[tuple[int, ...], int] = {}
        for row in encoded:
            unique.setdefault(tuple(row), len(unique))
        rows = [list(key) for key in unique]
        results: list[list[list[int]]] = [[] for _ in rows]
        for width, members in _width_groups(rows).items():
            part = [rows[i] for i in members]
            traces: list[list[BeamTrace]] | None = [] if self._traced else None
            found = self._beam_group(part, params, width, max(ranks), traces)
            for index, tokens in zip(members, found, strict=True):
                results[index] = tokens
            for row, hyps, per_rank in zip(part, found, traces or [[]] * len(part), strict=True):
                for tokens, trace in zip(hyps, per_rank, strict=False):  # greedy keeps none
                    self.written.add(self.decode(row + tokens), row, tokens, trace)
        pairs = zip(encoded, ranks, strict=True)
        return [row + results[unique[tuple(row)]][rank] for row, rank in pairs]

    def _beam_group(
        self,
        rows: list[list[int]],
        params: Mapping[str, Any],
        width: int,
        top_rank: int,
        traces: list[list[BeamTrace]] | None = None,
    ) -> list[list[list[int]]]:
        num_beams = int(params.get("num_beams", 1))
        budgets = [self._budget(params, len(row)) for row in rows]
        no_repeat = int(params.get("no_repeat_ngram_size") or 0)
        if num_beams == 1:
            greedy = self.fast.sample(
                rows,
                max_new_tokens=budgets,
                no_repeat_ngram_size=no_repeat,
                first_ban=self.first_ban,
                width=width,
            )
            if traces is not None:
                traces.extend([] for _ in greedy)  # greedy keeps no trace
            return [[tokens] for tokens in greedy]
        return self.fast.beam_search(
            rows,
            num_beams=num_beams,
            max_new_tokens=budgets,
            num_return_sequences=top_rank + 1,
            no_repeat_ngram_size=no_repeat,
            length_penalty=float(params.get("length_penalty", 1.0)),
            early_stopping=params.get("early_stopping", False),
            first_ban=self.first_ban,
            width=width,
            copy_guard=self.copy_guard,
            traces=traces,
        )

    def search_bits(self, texts: Sequence[str]) -> list[float | None]:
        """Bits the model spends on `<|endoftext|> text <|endoftext|>`, read from the last
        `generate` call's beam search for a text it wrote (or the start of one, as the
        post-processor cuts it); None for any other text (`generation.gpt.written`)."""
        return self.written.bits(texts)

    def _sample_ids(
        self, encoded: Sequence[list[int]], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in encoded]
        for width, members in _width_groups(encoded).items():
            sampler = SeededSampler(
                self._generators([seeds[i] for i in members]),
                temperature=float(params.get("temperature", 1.0)),
                top_p=float(params.get("top_p", 1.0)),
                top_k=int(params.get("top_k") or 0),
            )
            part = [encoded[i] for i in members]
            new = self.fast.sample(
                part,
                max_new_tokens=[self._budget(params, len(row)) for row in part],
                pick=sampler.pick,
                no_repeat_ngram_size=int(params.get("no_repeat_ngram_size") or 0),
                on_prune=sampler.keep,
                first_ban=self.first_ban,
                width=width,
            )
            for index, row, tokens in zip(members, part, new, strict=True):
                out[index] = row + tokens
        return out

    def _generators(self, seeds: Sequence[int | None]) -> list[torch.Generator]:
        generators = []
        for seed in seeds:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(seed if seed is not None else random.getrandbits(63))
            generators.append(generator)
        return generators


__all__ = ["KNOWN_PARAMS", "GptBackend"]
