"""The serving side of the `[src][SEP][tgt][EOS][PAD…]` sequences: prompts in, jokes out.

The source is the starting word (the first word of the joke) and the target is the whole joke.
Training data (generation.training.diffuseq_data) packs jokes into the same layout.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

_WORD = re.compile(r"\w+(?:-\w+)*")


def first_word(text: str) -> str:
    """The starting word of a joke: its first run of letters/digits (hyphens kept), e.g. `Доктор`
    in `— Доктор, у меня…`."""
    m = _WORD.search(text)
    return m.group(0) if m else ""


def starts_with_prompt(prompt: str, text: str) -> bool:
    """True when `text` begins with `prompt`, ignoring case and leading dashes/quotes/spaces.

    Evaluation uses it to count jokes whose starting word the model wrote itself.
    """
    p = prompt.strip().casefold()
    if not p:
        return True
    t = text.casefold()
    i = 0
    while i < len(t) and not (t[i].isalnum() or t[i] == p[0]):
        i += 1
    if not t[i:].startswith(p):
        return False
    rest = t[i + len(p) :]
    return not rest or not rest[0].isalnum()


def encode_source(tokenizer: Any, prompt: str, max_src_len: int) -> list[int]:
    ids = tokenizer(prompt.strip(), add_special_tokens=False)["input_ids"]
    return list(ids[:max_src_len])


def prompt_rows(
    tokenizer: Any, prompts: Sequence[str], seq_len: int, max_src_len: int, sep_id: int, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sampling inputs: source + SEP, then pad placeholders that the sampler overwrites."""
    rows, masks = [], []
    for p in prompts:
        src = encode_source(tokenizer, p, max_src_len)
        row = [*src, sep_id]
        rows.append(row + [pad_id] * (seq_len - len(row)))
        masks.append([True] * len(row) + [False] * (seq_len - len(row)))
    return torch.tensor(rows, dtype=torch.long), torch.tensor(masks, dtype=torch.bool)


def decode_target(tokenizer: Any, row: Sequence[int], src_len: int, stop_ids: set[int]) -> str:
    """The target text: tokens after SEP up to the first end/pad/SEP, special tokens removed."""
    out: list[int] = []
    for tok in row[src_len:]:
        if tok in stop_ids:
            break
        out.append(int(tok))
    return tokenizer.decode(out, skip_special_tokens=True).strip()
