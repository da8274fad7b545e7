"""The judge's fluency read from the beam search: the search's log-probabilities of its own jokes
stand in for the judge's forward pass over them.

Beam search reports each returned hypothesis' log-probability (new tokens and prompt); the GPT
backend keeps the bits of the texts its last search wrote; the judge takes them instead of
running `gpt_pass` over those texts, and runs the pass only for the others.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from generation.gpt.backend import GptBackend
from generation.gpt.beam import BeamTrace
from generation.gpt.decoding import FastDecoder
from generation.judge import features
from generation.judge.features import gpt_bpc, gpt_pass

PROMPTS = ["Молоко", "Штирлиц шёл по", "Кот", "Доктор, я"]
BEAM = {"do_sample": False, "num_beams": 4, "no_repeat_ngram_size": 2, "max_new_tokens": 20}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lm(tiny_gpt_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt_dir).eval()
    return model, AutoTokenizer.from_pretrained(tiny_gpt_dir)


@pytest.fixture(scope="module")
def backend(tiny_gpt_dir: Path) -> GptBackend:
    return GptBackend.from_pretrained(tiny_gpt_dir, quantize="int8")


def _log_prob(model: Any, tokens: list[int]) -> float:
    """log p(tokens[1:] | tokens[0]) by one plain forward pass."""
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([tokens])).logits[0, :-1].float()
    taken = torch.log_softmax(logits, -1).gather(-1, torch.tensor(tokens[1:])[:, None])
    return float(taken.sum())


@pytest.mark.parametrize("exact", [False, True])
def test_beam_search_scores_are_each_jokes_log_probability(
    lm: tuple[Any, Any], exact: bool
) -> None:
    model, tokenizer = lm
    decoder = FastDecoder(model, pad_id=tokenizer.pad_token_id, eos_ids=[tokenizer.eos_token_id])
    rows = [[tokenizer.bos_token_id, *tokenizer.encode(text)] for text in PROMPTS]
    options = {"num_beams": 4, "num_return_sequences": 3, "max_new_tokens": 20, "exact": exact}
    eos = tokenizer.eos_token_id
    with torch.inference_mode():
        plain = decoder.beam_search(rows, no_repeat_ngram_size=2, width=8, **options)
        traces: list[list[BeamTrace]] = []
        traced = decoder.beam_search(
            rows, no_repeat_ngram_size=2, width=8, traces=traces, **options
        )
    assert traced == plain  # keeping the traces changes no token
    assert [len(per_row) for per_row in traces] == [3] * len(rows)
    for row, hyps, per_rank in zip(rows, traced, traces, strict=True):
        for hyp, trace in zip(hyps, per_rank, strict=True):
            assert len(trace.tokens) == len(trace.ends) == len(hyp)
            # any first part of the new tokens, closed by an end-of-text, as one forward pass
            # over the whole sequence scores it
            body = hyp[:-1] if hyp[-1] == eos else hyp
            for kept in {0, len(body) // 2, len(body) - (hyp[-1] != eos)}:
                expected = _log_prob(model, [*row, *body[:kept], eos])
                assert trace.log_prob(kept) == pytest.approx(expected, abs=1e-3)
            assert trace.log_prob(len(hyp)) is None  # nothing was computed after the last


def _agree_with_the_pass(backend: GptBackend, texts: list[str]) -> None:
    """The search's bits per char of each text equal the judge's GPT pass: the same model through
    differently shaped kernels (cached, left-padded steps against one padded batch), so float
    rounding apart, the same figure."""
    _, passed = gpt_pass(backend, texts, pooled=False)
    for text, bpc in zip(texts, passed, strict=True):
        bits = backend.search_bits([text])[0]
        assert bits is not None
        assert bits / (len(text) + 1) == pytest.approx(float(bpc), rel=1e-3)


def test_backend_knows_the_bits_of_the_jokes_its_last_search_wrote(backend: GptBackend) -> None:
    prompts = [p for p in PROMPTS for _ in range(4)]
    texts = list(dict.fromkeys(backend.generate(prompts, BEAM, list(range(len(prompts))))))
    known = backend.search_bits(texts)
    finished = [t for t, b in zip(texts, known, strict=True) if b is not None]
    assert finished, "some joke must end with its end-of-text token"
    _agree_with_the_pass(backend, finished)
    # the start of a joke, cut where the post-processor cuts one (here: after a few tokens)
    cuts = []
    for prompt in PROMPTS:
        row = backend.encode_prompt(prompt)
        for written in backend.written._written:
            if written.prompt == row and len(written.tokens) > 3:
                cuts.append(backend.decode(row + written.tokens[:3]))
    cuts = [t for t in dict.fromkeys(cuts) if backend.search_bits([t])[0] is not None]
    assert cuts, "a cut joke tokenized as written must be known"
    _agree_with_the_pass(backend, cuts)
    assert backend.search_bits(["Текст, которого модель не писала"]) == [None]
    backend.generate(["Кот"], {"do_sample": True, "max_new_tokens": 5}, [1])
    assert backend.search_bits(finished) == [None] * len(finished)  # only the last call's


class _Gpt:
    """A GPT that knows the bits of some texts; the pass is replaced in the test."""

    def __init__(self, bits: dict[str, float]) -> None:
        self.bits = bits

    def search_bits(self, texts: list[str]) -> list[float | None]:
        return [self.bits.get(t) for t in texts]


def test_judge_runs_the_pass_only_over_texts_the_search_did_not_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    passed: list[list[str]] = []

    def fake_pass(gpt: Any, texts: list[str], *, pooled: bool = True) -> tuple[None, np.ndarray]:
        assert not pooled
        passed.append(list(texts))
        return None, np.full(len(texts), 7.0)

    monkeypatch.setattr(features, "gpt_pass", fake_pass)
    gpt = _Gpt({"abc": 8.0, "hello": 12.0})
    got = gpt_bpc(gpt, ["abc", "new one", "hello"])
    assert passed == [["new one"]]
    assert got.tolist() == [2.0, 7.0, 2.0]  # bits over characters + 1
    passed.clear()
    assert gpt_bpc(gpt, ["abc", "hello"]).tolist() == [2.0, 2.0]
    assert passed == []  # nothing to run
    assert gpt_bpc(gpt, ["abc"], reuse_search=False).tolist() == [7.0]
    assert passed == [["abc"]]


def test_bits_are_finite_log_probabilities(backend: GptBackend) -> None:
    texts = backend.generate(["Кот"] * 4, BEAM, [0, 1, 2, 3])
    for bits in backend.search_bits(texts):
        assert bits is None or (math.isfinite(bits) and bits > 0)
