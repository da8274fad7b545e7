"""The joke begins with the user's word as a word: the model may not glue letters onto it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from generation.gpt.backend import GptBackend

BEAM = {"do_sample": False, "num_beams": 4, "no_repeat_ngram_size": 2, "max_new_tokens": 12}
SAMPLE = {"do_sample": True, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 12}
# "Вовочка пришёл в школу…" is among the tiny model's training sentences, so after "Вовоч" it has
# learnt to go on with "ка": exactly the gluing the ban must prevent.
PREFIX = "Вовоч"


def _next_char(text: str) -> str:
    assert text.startswith(PREFIX), text
    return text[len(PREFIX) : len(PREFIX) + 1]


@pytest.mark.parametrize("params", [BEAM, SAMPLE], ids=["beam", "sample"])
def test_first_new_token_never_continues_the_word(
    tiny_gpt_dir: Path, params: dict[str, object]
) -> None:
    backend = GptBackend.from_pretrained(tiny_gpt_dir, threads=1)
    texts = backend.generate([PREFIX] * 6, params, list(range(6)))
    assert all(not _next_char(text).isalnum() for text in texts), texts


def test_without_the_ban_the_tiny_model_glues(tiny_gpt_dir: Path) -> None:
    """Shows the test above can fail: lift the ban and the model writes "Вовочка"."""
    backend = GptBackend.from_pretrained(tiny_gpt_dir, threads=1)
    backend.first_ban = torch.zeros_like(backend.first_ban)
    (text,) = backend.generate([PREFIX], BEAM, [0])
    assert _next_char(text).isalnum(), text


def test_ban_covers_word_pieces_and_eos_only(tiny_gpt_dir: Path) -> None:
    backend = GptBackend.from_pretrained(tiny_gpt_dir, threads=1)
    tokenizer = backend.tokenizer
    banned = {tokenizer.decode([i]) for i in backend.first_ban.nonzero().flatten().tolist()}
    assert all(
        piece[:1].isalnum() or i in backend.eos_ids
        for i, piece in enumerate(tokenizer.decode([i]) for i in range(len(tokenizer)))
        if backend.first_ban[i]
    )
    assert "." not in banned and " " not in banned
    assert all(backend.first_ban[i] for i in backend.eos_ids)
