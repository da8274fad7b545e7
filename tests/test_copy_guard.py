"""Beam search that steers away from training jokes (`generation.gpt.copy_guard`).

On a tiny GPT trained on a dozen sentences, the unguarded beams recite those sentences; with a
copy index of them the search must return continuations that share no window with any, from the
same single search. The sentences are shorter than the shipped index's `SHARE`, so the index here
holds every window of them (the shipped one keeps every `STRIDE`-th of longer jokes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from generation.checks.copies import WIDTH, CopyIndex, _hash_many, normalize
from generation.gpt.backend import GptBackend
from generation.gpt.copy_guard import CopyGuard, token_bytes
from generation.registry import gpt_presets
from generation.selection import Selector
from tests.fixtures_models import SENTENCES

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BEAM = {"do_sample": False, "num_beams": 6, "no_repeat_ngram_size": 2, "max_new_tokens": 40}


@pytest.fixture(scope="module")
def backend(tiny_gpt_dir: Path) -> GptBackend:
    return GptBackend.from_pretrained(tiny_gpt_dir)


def windows(text: str) -> list[str]:
    norm = normalize(text)
    return [norm[i : i + WIDTH] for i in range(len(norm) - WIDTH + 1)]


def shares_a_window(index: CopyIndex, text: str) -> bool:
    return bool(index.contains(windows(text)).any())


@pytest.fixture(scope="module")
def index() -> CopyIndex:
    return CopyIndex(np.unique(_hash_many([w for text in SENTENCES for w in windows(text)])))


def test_token_bytes_rebuild_cyrillic_split_across_tokens(backend: GptBackend) -> None:
    pieces = token_bytes(backend.tokenizer, len(backend.tokenizer))
    for text in SENTENCES:
        ids = backend.tokenizer.encode(text, add_special_tokens=False)
        assert b"".join(pieces[i] for i in ids).decode("utf-8") == text
    assert pieces[backend.tokenizer.eos_token_id] == b""


def test_guard_flags_the_step_a_training_window_is_completed(
    backend: GptBackend, index: CopyIndex
) -> None:
    guard = CopyGuard(index, token_bytes(backend.tokenizer, len(backend.tokenizer)))
    copied = backend.tokenizer.encode(SENTENCES[1], add_special_tokens=False)
    # the first prefix whose text holds a whole window of the sentence
    first = next(
        n for n in range(1, len(copied) + 1)
        if len(backend.tokenizer.decode(copied[:n])) >= WIDTH
    )  # fmt: skip
    flags = [bool(guard.entered_copy(torch.tensor([copied[:n]]))[0]) for n in range(1, first + 1)]
    assert flags[-1] and not any(flags[:-1])
    own = backend.tokenizer.encode("Молоко и кот пошли гулять, а потом уснули дома.")
    assert not bool(guard.entered_copy(torch.tensor([own])).any())


def test_guarded_beams_are_not_copies_and_unguarded_ones_were(
    backend: GptBackend, index: CopyIndex
) -> None:
    prompts = ["Штирлиц шёл по", "Купил", "Вовочка пришёл в"]
    free = backend.generate(prompts, BEAM, [0] * len(prompts))
    assert all(shares_a_window(index, text) for text in free), "the tiny model should recite"
    backend.avoid_copies(index)
    try:
        guarded = [backend.generate([p] * 6, BEAM, list(range(6))) for p in prompts]
    finally:
        backend.avoid_copies(None)
    assert backend.generate(prompts, BEAM, [0] * len(prompts)) == free
    for prompt, texts in zip(prompts, guarded, strict=True):
        assert len(texts[0]) > len(prompt) + 5, texts  # a real continuation, not an empty one
        for text in texts:
            assert text.startswith(prompt)
            assert not shares_a_window(index, text), text


def test_served_gpt_preset_stops_early() -> None:
    from generation.config import GenerationConfig

    assert gpt_presets(GenerationConfig.defaults())["gpt"]["early_stopping"] is True


def test_selector_hands_out_its_copy_index_only_while_active(index: CopyIndex) -> None:
    class Checker:
        copies = index

    assert Selector(None, None, checker=Checker(), judge=object()).copy_index is index
    assert Selector(None, None).copy_index is None
