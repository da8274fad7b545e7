"""The GPT backend: a transformers causal LM that continues the user's words into a joke.

Loaded once (`GptBackend.from_pretrained`), then called from the generation worker's thread with
batches of prompts. Two decoding families, chosen by the method's preset (`generation.registry`):

* beam search (`do_sample=False`, the original project's `gpt` method) — deterministic; the row's
  seed is read as a variant index (0 = best beam, 1 = second best, ...), so that several rows of
  one prompt give different jokes, as the original's `num_return_sequences` did;
* sampling (`do_sample=True`, `gpt-sample`) — every row draws from its own `torch.Generator`
  seeded with the row's seed, so a seeded joke is the same whatever else shares its batch.

Prompts are left-padded with an attention mask (transformers derives position ids from the mask),
so prompts of different lengths share one call. Our own model is trained on
`<|endoftext|> joke <|endoftext|>`, so its prompts start with the bos token; the original hub model
was not, so its prompts do not. A `"prepend_bos"` key in the model's `config.json` or
`generation_config.json` decides; without one, a `train_summary.json` in the model folder (written
by `generation.training.train_gpt`) means our model; the caller can force either way.

Two decoders behind the same interface (`decoder=`):

* "fast" (default): the hand-written KV-cache loop of `generation.gpt.decoding` — greedy and beam
  search token for token as `generate` computes them, sampling with `SeededSampler` (inverse CDF
  + nucleus by rejection, one generator per row); all rows go in one call, each with its own token
  budget, and finished rows leave the batch. Measured 1.3–2x faster than `generate` at batch 32
  and more with int8 weights (`quantize="int8"`, `generation.gpt.quantize`); see docs/BENCHMARKS.md.
* "hf": `model.generate`, with sampling done by a logits processor (`RowSampler`) that draws each
  row from its own generator. Also used when a preset asks for what the fast loop does not do
  (a repetition penalty). The two samplers map a seed to different texts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from generation.gpt.decoding import FastDecoder, SeededSampler, ban_repeated_ngrams, pad_width
from generation.gpt.quantize import apply_quantization

log = logging.getLogger(__name__)

#: "fast": the KV-cache loop of `generation.gpt.decoding`; "hf": transformers' `generate`.
DECODERS = ("fast", "hf")

BOS_FLAG = "prepend_bos"
TRAIN_SUMMARY = "train_summary.json"  # written by generation.training.train_gpt next to the weights
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")

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
        "repetition_penalty",
        "length_penalty",
        "early_stopping",
    }
)

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}") from None


class FirstTokenBan(LogitsProcessor):
    """For `generate`: forbid the banned tokens at the first new position only."""

    def __init__(self, prompt_len: int, ban: torch.Tensor) -> None:
        self.prompt_len = prompt_len
        self.ban = ban

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] != self.prompt_len:
            return scores
        return scores.masked_fill(self.ban[: scores.shape[-1]], float("-inf"))


class NoRepeatNGrams(LogitsProcessor):
    """For `generate`: transformers' no-repeat-n-gram rule with the layout tokens left free
    (`generation.gpt.decoding.ban_repeated_ngrams`), so both decoders write the same jokes."""

    def __init__(self, size: int, free: torch.Tensor) -> None:
        self.size = size
        self.free = free

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        return ban_repeated_ngrams(input_ids, scores, self.size, self.free[: scores.shape[-1]])


class RowSampler(LogitsProcessor):
    """Sample each row's next token with that row's own generator.

    transformers samples with the global RNG, which mixes rows: a row's draw would depend on its
    batch-mates. This processor applies temperature / top-k / top-p itself, draws one token per row
    from the row's generator, and returns scores where only that token is finite, so the
    `multinomial` inside `generate` can only pick it. It must be the last processor, which is
    where `generate` puts caller-supplied ones (after no_repeat_ngram and friends), and `generate`
    must be called with its own warpers switched off (temperature 1, top_k 0, top_p 1).
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
    ) -> None:
        self.generators = list(generators)
        self.warpers = LogitsProcessorList()
        if temperature != 1.0:
            self.warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def pick(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.LongTensor:
        """The chosen token per row (shape [batch]); reusable by a hand-written decoding loop."""
        probs = torch.softmax(self.warpers(input_ids, scores.float()), dim=-1)
        if probs.shape[0] != len(self.generators):
            raise RuntimeError(f"{probs.shape[0]} rows but {len(self.generators)} generators")
        return torch.cat(
            [
                torch.multinomial(row, 1, generator=generator)
                for row, generator in zip(probs, self.generators, strict=True)
            ]
        )

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        chosen = self.pick(input_ids, scores)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(1, chosen[:, None], 0.0)
        return out


def _width_groups(rows: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    """Row indices by padded prompt width (`pad_width`): rows that may share one fast-decoder
    call without changing each other's output (a single word always lands in the first group)."""
    groups: dict[int, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(pad_width(len(row)), []).append(index)
    return groups


def _is_local(name: str | Path) -> bool:
    text = str(name)
    return Path(text).exists() or text.startswith((".", "/", "~")) or text.count("/") > 1


def _detect_prepend_bos(name: str | Path, lm: Any) -> bool:
    """Whether the model was trained on `<bos> joke <eos>` and so wants bos before the prompt.

    An explicit `prepend_bos` in the saved config or generation config decides; otherwise a
    `train_summary.json` next to the weights marks a model from our `generation.training.train_gpt`,
    which trains that way. Anything else (the original hub model) gets the bare prompt.
    """
    for source in (lm.generation_config, lm.config):
        value = getattr(source, BOS_FLAG, None)
        if value is not None:
            return bool(value)
    folder = Path(str(name)).expanduser()
    return (folder / TRAIN_SUMMARY).is_file()


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
        decoder: str = "fast",
        one_thread_below_rows: int | None = None,
    ) -> None:
        """`decoder`: "fast" (the KV-cache loop of `generation.gpt.decoding`) or "hf" (`generate`).
        `one_thread_below_rows`: see `FastDecoder` (fast decoder only)."""
        if decoder not in DECODERS:
            raise ValueError(f"unknown decoder {decoder!r}; use one of {DECODERS}")
        self.model = model.eval()
        self.decoder = decoder
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
        word in about a fifth of all jokes (docs/QUALITY.md). Computed once per model.
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
        decoder: str = "fast",
        quantize: str | None = None,
        one_thread_below_rows: int | None = None,
    ) -> GptBackend:
        """Load a model folder or hub name; the tokenizer from `tokenizer` or the model's place.

        `prepend_bos=None` detects it (see the module docstring).
        `threads` sets torch's intra-op threads (a process-wide setting); None or 0 leaves it.
        `quantize`: "int8" (row-wise, batch-invariant, CPU), "int8-fbgemm", "bf16", None/"none"; see
        `generation.gpt.quantize`. `decoder`: "fast" or "hf" (see `__init__`).
        """
        if threads:
            torch.set_num_threads(threads)
        for name in (model, tokenizer):
            if name is not None and _is_local(name) and not Path(str(name)).expanduser().exists():
                raise FileNotFoundError(f"model folder not found: {name}")
        tokenizer_source = str(tokenizer if tokenizer is not None else model)
        hint = "" if tokenizer is not None else " (name a separate one, e.g. GPT_TOKENIZER)"
        local_dir = Path(tokenizer_source).expanduser()
        if local_dir.is_dir() and not any((local_dir / f).exists() for f in TOKENIZER_FILES):
            # transformers 5 would quietly build an empty tokenizer from such a folder.
            raise OSError(f"no tokenizer files in {tokenizer_source}{hint}")
        try:
            tok = AutoTokenizer.from_pretrained(tokenizer_source)
        except (OSError, ValueError) as error:
            raise OSError(f"no tokenizer at {tokenizer_source}{hint}: {error}") from error
        if len(tok) < 2:
            raise OSError(f"the tokenizer at {tokenizer_source} is empty{hint}")
        lm = AutoModelForCausalLM.from_pretrained(str(model), dtype=resolve_dtype(dtype))
        lm.to(device)
        lm = apply_quantization(lm.eval(), quantize)
        if prepend_bos is None:
            prepend_bos = _detect_prepend_bos(model, lm)
        if model_id is None:
            local = _is_local(model)
            model_id = Path(str(model)).expanduser().resolve().name if local else str(model)
        backend = cls(
            lm,
            tok,
            model_id=model_id,
            prepend_bos=prepend_bos,
            device=device,
            decoder=decoder,
            one_thread_below_rows=one_thread_below_rows,
        )
        log.info(
            "loaded %s (%s, %s, quantize=%s, decoder=%s, prepend_bos=%s, %d threads)",
            model_id,
            device,
            resolve_dtype(dtype),
            quantize or "none",
            decoder,
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
        fast = self.decoder == "fast" and float(params.get("repetition_penalty", 1.0)) == 1.0
        with torch.inference_mode():
            if params.get("do_sample", False):
                sample = self._fast_sample_ids if fast else self._sample_ids
                outputs = sample(encoded, params, seeds)
            else:
                beam = self._fast_beam_ids if fast else self._beam_ids
                outputs = beam(encoded, params, seeds)
        return [self.decode(ids) for ids in outputs]

    def warmup(self) -> None:
        """Run both decoding families once, so allocations happen before the first user."""
        sample = {"do_sample": True, "max_new_tokens": 2, "top_p": 0.9, "no_repeat_ngram_size": 2}
        beam = {"do_sample": False, "num_beams": 2, "max_new_tokens": 2, "no_repeat_ngram_size": 2}
        self.generate(["Привет", "Шутка дня"], sample, [0, 1])
        self.generate(["Привет"], beam, [0])

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

    def _batch(self, rows: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-pad token lists into input ids + attention mask."""
        width = max(len(row) for row in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for index, row in enumerate(rows):
            if row:
                ids[index, width - len(row) :] = torch.tensor(row, dtype=torch.long)
                mask[index, width - len(row) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _groups(self, encoded: Sequence[list[int]], params: Mapping[str, Any]) -> list[list[int]]:
        """Row indices that may share one `generate` call.

        With `max_new_tokens` every row gets the same budget, so all rows go together. The
        original `max_length` counts the prompt's tokens too, so only equal-length prompts share
        a call (left padding would otherwise change a row's budget with its batch-mates).
        """
        if params.get("max_new_tokens") is not None or params.get("max_length") is None:
            return [list(range(len(encoded)))]
        by_length: dict[int, list[int]] = {}
        for index, row in enumerate(encoded):
            by_length.setdefault(len(row), []).append(index)
        return list(by_length.values())

    def _no_repeat(self, params: Mapping[str, Any]) -> list[LogitsProcessor]:
        size = int(params.get("no_repeat_ngram_size") or 0)
        return [NoRepeatNGrams(size, self.ngram_free)] if size > 0 else []

    def _budget(self, params: Mapping[str, Any], prompt_len: int) -> int:
        if params.get("max_new_tokens") is not None:
            return int(params["max_new_tokens"])
        if params.get("max_length") is not None:
            return max(1, int(params["max_length"]) - prompt_len)
        return 32

    def _common(self, params: Mapping[str, Any], prompt_len: int) -> dict[str, Any]:
        return {
            "max_new_tokens": self._budget(params, prompt_len),
            "no_repeat_ngram_size": 0,  # our `NoRepeatNGrams` processor instead
            "repetition_penalty": float(params.get("repetition_penalty", 1.0)),
            "bos_token_id": self.tokenizer.bos_token_id,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
        }

    # -- the fast decoder: one call for all rows, each row with its own token budget -------------

    def _fast_beam_ids(
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
            for index, found in zip(
                members, self._fast_beam_group(part, params, width, max(ranks)), strict=True
            ):
                results[index] = found
        pairs = zip(encoded, ranks, strict=True)
        return [row + results[unique[tuple(row)]][rank] for row, rank in pairs]

    def _fast_beam_group(
        self, rows: list[list[int]], params: Mapping[str, Any], width: int, top_rank: int
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
        )

    def _fast_sample_ids(
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

    # -- transformers' generate ------------------------------------------------------------------

    def _beam_ids(
        self, encoded: Sequence[list[int]], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[list[int]]:
        num_beams = int(params.get("num_beams", 1))
        ranks = [(seed or 0) % num_beams for seed in seeds]
        outputs: list[list[int]] = [[] for _ in encoded]
        for group in self._groups(encoded, params):
            # Identical prompts are decoded once; their rows take different ranks of the result.
            unique: dict[tuple[int, ...], int] = {}
            for index in group:
                unique.setdefault(tuple(encoded[index]), len(unique))
            returns = max(ranks[index] for index in group) + 1
            rows = [list(key) for key in unique]
            ids, mask = self._batch(rows)
            config = GenerationConfig(
                do_sample=False,
                num_beams=num_beams,
                num_return_sequences=returns,
                length_penalty=float(params.get("length_penalty", 1.0)),
                early_stopping=params.get("early_stopping", False),
                **self._common(params, ids.shape[1]),
            )
            result = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=LogitsProcessorList(
                    [*self._no_repeat(params), FirstTokenBan(ids.shape[1], self.first_ban)]
                ),
            )
            for index in group:
                row = unique[tuple(encoded[index])] * returns + ranks[index]
                outputs[index] = encoded[index] + result[row, ids.shape[1] :].tolist()
        return outputs

    def _sample_ids(
        self, encoded: Sequence[list[int]], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[list[int]]:
        outputs: list[list[int]] = [[] for _ in encoded]
        for group in self._groups(encoded, params):
            sampler = RowSampler(
                self._generators([seeds[index] for index in group]),
                temperature=float(params.get("temperature", 1.0)),
                top_p=float(params.get("top_p", 1.0)),
                top_k=int(params.get("top_k") or 0),
            )
            ids, mask = self._batch([encoded[index] for index in group])
            config = GenerationConfig(
                do_sample=True,
                num_beams=1,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                **self._common(params, ids.shape[1]),
            )
            result = self.model.generate(
                input_ids=ids,
                attention_mask=mask,
                generation_config=config,
                logits_processor=LogitsProcessorList(
                    [*self._no_repeat(params), FirstTokenBan(ids.shape[1], self.first_ban), sampler]
                ),
            )
            for position, index in enumerate(group):
                outputs[index] = encoded[index] + result[position, ids.shape[1] :].tolist()
        return outputs


__all__ = ["BOS_FLAG", "DECODERS", "KNOWN_PARAMS", "GptBackend", "RowSampler", "resolve_dtype"]
