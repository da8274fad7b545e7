"""The written-out GPT-2 step calls the model's modules through `forward`, unless hooks are on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from generation.gpt.batch import left_pad
from generation.gpt.decoding import FastDecoder
from generation.gpt.gpt2_step import Gpt2Step

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def lm(tiny_gpt_dir: Path) -> tuple[Any, Any]:
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt_dir).eval()
    return model, AutoTokenizer.from_pretrained(tiny_gpt_dir)


def _steps(decoder: FastDecoder, rows: list[list[int]], steps: int) -> list[torch.Tensor]:
    ids, mask = left_pad(rows, decoder.pad_id, width=8)
    out = []
    with torch.inference_mode():
        logits, state = decoder.prefill(ids, mask)
        for _ in range(steps):
            logits = decoder.step(logits.argmax(-1), state)
            out.append(logits)
    return out


def test_a_hooked_model_keeps_its_hooks_and_its_floats(lm: tuple[Any, Any]) -> None:
    model, tokenizer = lm
    decoder = FastDecoder(model, pad_id=tokenizer.pad_token_id, eos_ids=[tokenizer.eos_token_id])
    rows = [[tokenizer.bos_token_id, *tokenizer.encode(t)] for t in ["Кот", "Доктор, я"]]
    plain = _steps(decoder, rows, 4)
    assert Gpt2Step.of(model).lm_head == model.lm_head.forward  # no hooks: straight to forward
    calls: list[int] = []
    handle = model.lm_head.register_forward_hook(lambda *_: calls.append(1))
    try:
        assert Gpt2Step.of(model).lm_head == model.lm_head  # the module call, hooks included
        hooked = _steps(decoder, rows, 4)
    finally:
        handle.remove()
    assert len(calls) == 1 + 4  # the prompt pass and every step
    assert all(torch.equal(a, b) for a, b in zip(plain, hooked, strict=True))
