"""The no-repeat-n-gram rule of both decoding loops, with a joke's layout tokens left free."""

from __future__ import annotations

import torch


def ban_repeated_ngrams(
    ids: torch.Tensor, scores: torch.Tensor, size: int, free: torch.Tensor | None = None
) -> torch.Tensor:
    """Set to -inf every token that would repeat an n-gram of `size` already in `ids` (in place).

    The same rule as transformers' `NoRepeatNGramLogitsProcessor` (all of a row's ids count, left
    padding included), with tensor ops instead of a Python loop per row and per position.
    `free` (bool per token id): an n-gram holding one of these tokens is never banned. A joke's
    layout repeats by nature: every dialogue turn starts with a line break and a dash, and with the
    pair banned after the second turn the model had to write its third without one («Онаю.»).
    """
    length = ids.shape[1]
    if size <= 0 or length < size:
        return scores
    windows = ids.unfold(1, size, 1)  # [rows, length - size + 1, size]
    prefix = ids[:, length - size + 1 :]  # the last size-1 tokens
    match = (windows[:, :, : size - 1] == prefix[:, None, :]).all(dim=-1)
    if free is not None:
        match &= ~free[windows].any(dim=-1)
    rows, starts = match.nonzero(as_tuple=True)
    if rows.numel():
        scores[rows, windows[rows, starts, size - 1]] = float("-inf")
    return scores


__all__ = ["ban_repeated_ngrams"]
