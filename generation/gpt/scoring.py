"""Scoring text under a causal language model: how many bits the GPT spends on a joke.

Serving (the judge's fluency feature) and the lab (held-out bits per character, temperature
calibration, the weight-format benchmark) all score `<|endoftext|> joke <|endoftext|>` the same
way, so the code lives here, on the serving side, and the lab imports it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch


def encode_jokes(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """`<|endoftext|> joke <|endoftext|>` token ids, exactly as the trainer builds them."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-text token")
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    return [[eos, *row, eos] for row in ids]


def context_length(model: Any) -> int:
    """How many positions the model attends to (`n_positions` or `max_position_embeddings`)."""
    return int(
        getattr(model.config, "n_positions", 0)
        or getattr(model.config, "max_position_embeddings", 1024)
    )


def padded_batches(
    sequences: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    device: torch.device | str = "cpu",
    max_len: int | None = None,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """(rows, ids, mask) for the sequences no longer than `max_len`, in length-sorted,
    right-padded batches on `device`: batch row r is sequence `rows[r]`, `mask` marks its real
    tokens. Real tokens never attend to pads under a causal mask, so the padding changes no
    score, and sorting by length keeps it short."""
    fits = [i for i, seq in enumerate(sequences) if max_len is None or len(seq) <= max_len]
    order = sorted(fits, key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(sequences[i]) for i in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, i in enumerate(rows):
            ids[r, : len(sequences[i])] = torch.tensor(list(sequences[i]))
            mask[r, : len(sequences[i])] = True
        yield rows, ids.to(device), mask.to(device)


@torch.inference_mode()
def next_token_logits(
    model: Any, sequences: Sequence[Sequence[int]], batch_size: int = 32, pad_id: int = 0
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(rows, logits, targets, mask) for the sequences that fit the context, in the batches of
    `padded_batches`: `logits[r, t]` predicts `targets[r, t]` (token t+1 of sequence `rows[r]`),
    `mask` marks real targets."""
    device = next(model.parameters()).device
    batches = padded_batches(sequences, batch_size, pad_id, device, context_length(model))
    for rows, ids, mask in batches:
        logits = model(input_ids=ids, attention_mask=mask.long()).logits.float()
        yield rows, logits[:, :-1], ids[:, 1:], mask[:, 1:]


@torch.inference_mode()
def lm_sequence_bits(
    model: Any, sequences: Sequence[Sequence[int]], batch_size: int = 32, pad_id: int = 0
) -> list[float]:
    """-log2 p of tokens 1..end of each sequence under a causal LM (token 0 is context only).

    A sequence longer than the model's context is scored in overlapping windows, each new token
    seeing at least half a window of history.
    """
    n_pos = context_length(model)
    device = next(model.parameters()).device
    bits = [0.0] * len(sequences)
    for rows, logits, targets, mask in next_token_logits(model, sequences, batch_size, pad_id):
        logp = torch.log_softmax(logits, dim=-1)
        target = logp.gather(-1, targets[..., None]).squeeze(-1)
        total = -(target * mask).sum(1) / np.log(2)
        for r, i in enumerate(rows):
            bits[i] = float(total[r])
    for i, seq in enumerate(sequences):
        if len(seq) > n_pos:
            bits[i] = _windowed_bits(model, list(seq), n_pos, device)
    return bits


def _windowed_bits(model: Any, seq: list[int], n_pos: int, device: torch.device) -> float:
    stride = n_pos // 2
    total, scored = 0.0, 1  # position of the next token to score
    begin = 0
    while scored < len(seq):
        window = seq[begin : begin + n_pos]
        logits = model(input_ids=torch.tensor([window], device=device)).logits.float()[0]
        logp = torch.log_softmax(logits[:-1], dim=-1)
        for pos in range(max(scored, begin + 1), begin + len(window)):
            total -= float(logp[pos - begin - 1, seq[pos]]) / np.log(2)
        scored = begin + len(window)
        begin += stride
    return total


def bits_per_char(bits: Sequence[float], texts: Sequence[str]) -> float:
    """Sum of each joke's bits (its tokens and the final end-of-text token) over the sum of
    (characters + 1): the +1 is the end-of-text "character" the model also has to predict.
    Bits per character does not depend on the tokenizer, so models with different vocabularies
    compare.

    `texts` must be the exact (normalised) strings that were scored.
    """
    if len(bits) != len(texts):
        raise ValueError("one bit total per text")
    chars = sum(len(text) + 1 for text in texts)
    return float(sum(bits)) / chars if chars else float("nan")


__all__ = [
    "bits_per_char",
    "context_length",
    "encode_jokes",
    "lm_sequence_bits",
    "next_token_logits",
    "padded_batches",
]
