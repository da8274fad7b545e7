"""The hand-written KV-cache decoder against transformers' `generate`, on a tiny trained GPT-2.

Greedy and beam search must give the same tokens as `generate` (bit-exact mode and the default
mode that drops finished rows and shares the prompt pass); sampling must depend only on a row's
own seed, and draw from the right (nucleus) distribution.
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    NoRepeatNGramLogitsProcessor,
)

from generation import interrupt
from generation.config import GenerationConfig as ServedConfig
from generation.gpt.backend import GptBackend
from generation.gpt.batch import left_pad
from generation.gpt.decoding import (
    ONE_THREAD_BELOW_WORK,
    FastDecoder,
    is_plain_gpt2,
    matrix_weights,
)
from generation.gpt.ngrams import ban_repeated_ngrams
from generation.gpt.sampler import SeededSampler
from generation.registry import gpt_presets
from generation.types import GenerationCancelled

PROMPTS = ["Молоко", "Штирлиц шёл по", "Кот", "Доктор, я", "Вовочка пришёл в школу", "Купил"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lm(tiny_gpt_dir: Path) -> tuple[Any, Any]:
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt_dir)
    return model, tokenizer


@pytest.fixture(scope="module")
def decoder(lm: tuple[Any, Any]) -> FastDecoder:
    model, tokenizer = lm
    return FastDecoder(model, pad_id=tokenizer.pad_token_id, eos_ids=[tokenizer.eos_token_id])


def rows_of(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    return [[tokenizer.bos_token_id, *tokenizer.encode(text)] for text in prompts]


def hf_generate(lm: tuple[Any, Any], rows: list[list[int]], **config: Any) -> list[list[int]]:
    """`generate`'s new tokens per returned sequence, cut after the first eos."""
    model, tokenizer = lm
    ids, mask = left_pad(rows, tokenizer.pad_token_id)
    eos = tokenizer.eos_token_id
    generation_config = GenerationConfig(
        eos_token_id=[eos],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **config,
    )
    with torch.inference_mode():
        out = model.generate(
            input_ids=ids, attention_mask=mask, generation_config=generation_config
        )
    result = []
    for row in out[:, ids.shape[1] :].tolist():
        cut = row.index(eos) + 1 if eos in row else len(row)
        tokens = row[:cut]
        if eos not in tokens:  # a shorter hypothesis of a longer batch: padded at the end
            while tokens and tokens[-1] == tokenizer.pad_token_id:
                tokens.pop()
        result.append(tokens)
    return result


@pytest.mark.parametrize("no_repeat", [0, 2, 3])
@pytest.mark.parametrize("exact", [True, False])
def test_greedy_matches_generate(
    lm: tuple[Any, Any], decoder: FastDecoder, no_repeat: int, exact: bool
) -> None:
    rows = rows_of(lm[1], PROMPTS)
    expected = hf_generate(
        lm, rows, do_sample=False, num_beams=1, max_new_tokens=30, no_repeat_ngram_size=no_repeat
    )
    with torch.inference_mode():
        got = decoder.sample(rows, max_new_tokens=30, no_repeat_ngram_size=no_repeat, exact=exact)
    assert got == expected
    assert any(row and row[-1] == lm[1].eos_token_id for row in got)  # some rows stop early


BEAM_CASES = [
    {"num_beams": 4, "num_return_sequences": 4},
    {"num_beams": 10, "num_return_sequences": 3},
    {"num_beams": 5, "num_return_sequences": 2, "length_penalty": 0.5, "early_stopping": True},
    {"num_beams": 3, "num_return_sequences": 3, "length_penalty": 2.0, "early_stopping": "never"},
    {"num_beams": 2, "num_return_sequences": 1},
]


@cache
def expected_beams(lm: tuple[Any, Any], case: tuple[tuple[str, Any], ...]) -> list[list[int]]:
    rows = rows_of(lm[1], PROMPTS)
    return hf_generate(
        lm, rows, do_sample=False, max_new_tokens=25, no_repeat_ngram_size=2, **dict(case)
    )


@pytest.mark.parametrize("case", BEAM_CASES, ids=lambda case: "-".join(map(str, case.values())))
@pytest.mark.parametrize("exact", [True, False])
def test_beam_search_matches_generate(
    lm: tuple[Any, Any], decoder: FastDecoder, case: dict[str, Any], exact: bool
) -> None:
    rows = rows_of(lm[1], PROMPTS)
    expected = expected_beams(lm, tuple(sorted(case.items())))
    with torch.inference_mode():
        got = decoder.beam_search(
            rows, max_new_tokens=25, no_repeat_ngram_size=2, exact=exact, **case
        )
    assert [hyp for per_row in got for hyp in per_row] == expected


def test_beam_search_row_budgets_match_separate_calls(
    lm: tuple[Any, Any], decoder: FastDecoder
) -> None:
    """One call with a budget per row = `generate` per row with that budget."""
    rows = rows_of(lm[1], PROMPTS[:3])
    budgets = [3, 12, 7]
    with torch.inference_mode():
        got = decoder.beam_search(
            rows, num_beams=4, num_return_sequences=2, max_new_tokens=budgets,
            no_repeat_ngram_size=2,
        )  # fmt: skip
    for row, budget, hyps in zip(rows, budgets, got, strict=True):
        expected = hf_generate(
            lm, [row], do_sample=False, num_beams=4, num_return_sequences=2,
            max_new_tokens=budget, no_repeat_ngram_size=2,
        )  # fmt: skip
        assert hyps == expected
        assert all(len(hyp) <= budget for hyp in hyps)


@pytest.mark.parametrize("size", [1, 2, 3])
def test_ngram_ban_matches_transformers(size: int) -> None:
    generator = torch.Generator().manual_seed(size)
    ids = torch.randint(0, 6, (8, 12), generator=generator)
    scores = torch.randn(8, 6, generator=generator)
    expected = NoRepeatNGramLogitsProcessor(size)(ids, scores.clone())
    got = ban_repeated_ngrams(ids, scores.clone(), size)
    assert torch.equal(torch.isinf(got), torch.isinf(expected))
    assert torch.equal(got, expected)


def sample_rows(
    decoder: FastDecoder, rows: list[list[int]], seeds: list[int], **params: Any
) -> list[list[int]]:
    sampler = SeededSampler([torch.Generator().manual_seed(s) for s in seeds], **params)
    with torch.inference_mode():
        return decoder.sample(
            rows, max_new_tokens=20, pick=sampler.pick, no_repeat_ngram_size=2,
            on_prune=sampler.keep,
        )  # fmt: skip


def test_sampling_rows_depend_only_on_their_own_seed(
    lm: tuple[Any, Any], decoder: FastDecoder
) -> None:
    rows = rows_of(lm[1], PROMPTS)
    seeds = [11, 12, 13, 14, 15, 16]
    params = {"temperature": 1.2, "top_p": 0.9}
    together = sample_rows(decoder, rows, seeds, **params)
    pairs = zip(rows, seeds, strict=True)
    alone = [sample_rows(decoder, [row], [seed], **params)[0] for row, seed in pairs]
    assert together == alone
    # reversed order and other batch-mates: the same rows again
    assert sample_rows(decoder, rows[::-1], seeds[::-1], **params) == together[::-1]
    # different seeds give different texts (a hot temperature on a tiny model)
    other = sample_rows(decoder, rows, [seed + 100 for seed in seeds], **params)
    assert other != together


def nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """The reference: transformers' TopP rule applied to one row of probabilities."""
    ordered, index = probs.sort()
    keep = torch.zeros_like(probs, dtype=torch.bool)
    keep[index[ordered.cumsum(0) > 1 - top_p]] = True
    kept = torch.where(keep, probs, 0.0)
    return kept / kept.sum()


@pytest.mark.parametrize(
    ("params", "reference"),
    [
        ({"top_p": 0.8}, lambda p: nucleus(p, 0.8)),
        ({"temperature": 0.5}, None),
        ({"top_k": 2}, None),
        ({}, None),
    ],
)
def test_sampler_draws_the_right_distribution(params: dict[str, Any], reference: Any) -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5, 0.0, -1.0, -3.0]])
    temperature = params.get("temperature", 1.0)
    probs = torch.softmax(logits[0] / temperature, -1)
    if params.get("top_k"):
        probs = torch.where(probs >= probs.topk(params["top_k"]).values[-1], probs, 0.0)
        probs = probs / probs.sum()
    expected = reference(probs) if reference else probs
    draws = 20_000  # one row per draw, each with its own generator: one vectorised call
    sampler = SeededSampler([torch.Generator().manual_seed(s) for s in range(draws)], **params)
    chosen = sampler.pick(torch.zeros(draws, 1), logits.expand(draws, -1))
    frequencies = torch.bincount(chosen, minlength=6).float() / draws
    assert torch.all(frequencies[expected == 0] == 0)
    assert torch.allclose(frequencies, expected, atol=0.015)


def test_sampler_follows_dropped_rows() -> None:
    sampler = SeededSampler([torch.Generator().manual_seed(s) for s in range(4)])
    sampler.keep([1, 3])
    assert [g.initial_seed() for g in sampler.generators] == [1, 3]
    with pytest.raises(RuntimeError):
        sampler.pick(torch.zeros(3, 1), torch.zeros(3, 5))


class ServedRules(LogitsProcessor):
    """`GptBackend`'s rules for `generate`: n-grams holding layout tokens may repeat, and the first
    new token may not glue letters onto the prompt's last word."""

    def __init__(self, backend: GptBackend, size: int, prompt_len: int) -> None:
        self.backend, self.size, self.prompt_len = backend, size, prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scores = ban_repeated_ngrams(input_ids, scores, self.size, self.backend.ngram_free)
        if input_ids.shape[1] == self.prompt_len:
            scores = scores.masked_fill(self.backend.first_ban, float("-inf"))
        return scores


def generate_served(backend: GptBackend, prompt: str, params: dict[str, Any], rank: int) -> str:
    """What transformers' beam search writes for one prompt alone under the served rules."""
    ids = torch.tensor([backend.encode_prompt(prompt)])
    config = GenerationConfig(
        do_sample=False,
        num_beams=params["num_beams"],
        num_return_sequences=rank + 1,
        early_stopping=params.get("early_stopping", False),
        max_new_tokens=backend._budget(params, ids.shape[1]),
        eos_token_id=backend.eos_ids,
        pad_token_id=backend.pad_id,
    )
    rules = ServedRules(backend, params["no_repeat_ngram_size"], ids.shape[1])
    with torch.inference_mode():
        out = backend.model.generate(
            input_ids=ids, generation_config=config, logits_processor=LogitsProcessorList([rules])
        )
    return backend.decode(out[rank].tolist())


def test_backend_beam_search_is_generate_under_the_served_rules(tiny_gpt_dir: Path) -> None:
    """The backend's own loop (identical prompts sharing one search, a rank per row, prompts of
    different lengths in one call) writes what `generate` writes for each prompt alone."""
    fast = GptBackend.from_pretrained(tiny_gpt_dir, quantize="none")
    presets = gpt_presets(ServedConfig.defaults(gpt_num_beams=4, gpt_max_new_tokens=24))
    prompts = ["Молоко", "Молоко", "Штирлиц шёл", "Кот"]
    variants = [0, 1, 0, 2]
    pairs = list(zip(prompts, variants, strict=True))
    assert fast.generate(prompts, presets["gpt"], variants) == [
        generate_served(fast, prompt, presets["gpt"], rank) for prompt, rank in pairs
    ]
    # the original's max_length (prompt tokens included), prompts of different lengths in one call
    original = {**presets["gpt"], "max_length": 12}
    original.pop("max_new_tokens")
    assert fast.generate(prompts, original, variants) == [
        generate_served(fast, prompt, original, rank) for prompt, rank in pairs
    ]
    sample = presets["gpt-sample"]
    assert fast.generate(prompts, sample, [1, 2, 3, 4]) == fast.generate(
        prompts, sample, [1, 2, 3, 4]
    )


def test_small_call_threshold_follows_the_model_size(lm: tuple[Any, Any]) -> None:
    """The matrix layers' weights are what one row of a step costs; the default threshold
    scales inversely with them, and an explicit one is kept as given."""
    model, tokenizer = lm
    c, layers, vocab = model.config.n_embd, model.config.n_layer, model.config.vocab_size
    expected = layers * (c * 3 * c + c * c + c * 4 * c + 4 * c * c) + vocab * c
    assert matrix_weights(model) == expected
    auto = FastDecoder(model, pad_id=tokenizer.pad_token_id, eos_ids=[tokenizer.eos_token_id])
    assert auto.one_thread_below_rows == round(ONE_THREAD_BELOW_WORK / expected)
    fixed = FastDecoder(
        model, pad_id=tokenizer.pad_token_id, eos_ids=[tokenizer.eos_token_id],
        one_thread_below_rows=0,
    )  # fmt: skip
    assert fixed.one_thread_below_rows == 0


def _steps_both_ways(decoder: FastDecoder, rows: list[list[int]], steps: int) -> None:
    """Prefill twice, then feed the same tokens through the written-out GPT-2 step and through
    transformers' forward: the logits must be equal to the bit at every step."""
    ids, mask = left_pad(rows, decoder.pad_id, width=8)
    with torch.inference_mode():
        logits, mine = decoder.prefill(ids, mask)
        _, theirs = decoder.prefill(ids, mask)
        assert decoder.plain_gpt2 and mine.plain
        for _ in range(steps):
            tokens = logits.argmax(-1)
            logits = decoder.step(tokens, mine)
            decoder.plain_gpt2 = False
            try:
                reference = decoder.step(tokens, theirs)
            finally:
                decoder.plain_gpt2 = True
            assert torch.equal(logits, reference)


def test_written_out_gpt2_step_equals_the_model_forward(
    decoder: FastDecoder, lm: tuple[Any, Any]
) -> None:
    _steps_both_ways(decoder, rows_of(lm[1], PROMPTS), steps=6)


def test_written_out_gpt2_step_equals_the_forward_with_int8_weights(tiny_gpt_dir: Path) -> None:
    backend = GptBackend.from_pretrained(tiny_gpt_dir, quantize="int8")
    prompts = [backend.encode_prompt(p) for p in PROMPTS]
    _steps_both_ways(backend.fast, prompts, steps=6)


def test_other_models_keep_the_model_forward(lm: tuple[Any, Any]) -> None:
    model = lm[0]
    assert is_plain_gpt2(model)
    model.config._attn_implementation = "eager"
    try:
        assert not is_plain_gpt2(model)
    finally:
        model.config._attn_implementation = "sdpa"


def test_layout_tokens_may_repeat_under_the_no_repeat_rule() -> None:
    """Every dialogue turn starts with a line break and a dash: with that pair banned after the
    second turn, the model had to write the third without one ("…делать?\\nОнаю.")."""
    newline, dash, word = 1, 2, 3
    ids = torch.tensor([[newline, dash, word, newline]])
    free = torch.zeros(5, dtype=torch.bool)
    plain = ban_repeated_ngrams(ids, torch.zeros(1, 5), 2)
    assert plain[0, dash] == float("-inf")  # the plain rule: "\n -" was seen, so no dash now
    kept = ban_repeated_ngrams(
        ids, torch.zeros(1, 5), 2, free.index_fill(0, torch.tensor([1, 2]), True)
    )
    assert torch.isfinite(kept).all()
    words = torch.tensor([[word, 4, word]])
    assert ban_repeated_ngrams(words, torch.zeros(1, 5), 2, free)[0, 4] == float("-inf")


@pytest.mark.parametrize("method", ["gpt", "gpt-sample"])
def test_a_set_stop_event_interrupts_decoding(tiny_gpt_dir: Path, method: str) -> None:
    backend = GptBackend.from_pretrained(tiny_gpt_dir)
    preset = gpt_presets(ServedConfig.defaults())[method]
    stop = threading.Event()
    interrupt.install(stop)
    try:
        backend.generate(["Кот"], preset, [0])  # not set: decodes as usual
        stop.set()
        with pytest.raises(GenerationCancelled):
            backend.generate(["Кот"], preset, [0])
    finally:
        interrupt.install(threading.Event())
