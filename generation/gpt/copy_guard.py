"""Steer beam search away from training jokes while it searches, not after.

Beam search finds the likeliest continuations, and for a small model trained on ~10 M characters
of jokes the likeliest continuation of a stock opening is often a training joke word for word.
Dropping copies after the search (the reader's checks in `generation.selection`) then left some
words with nothing to show, and the extra searches that followed cost more than the first one.
Here a continuation is closed the step its text comes to share a window of the copy index
(`generation.checks.copies`) with a training joke, so the beams that survive are the likeliest
jokes that are not copies, found in the one search.

Only the windows that end in the newest token are looked up: older ones were looked up when their
token was new. Texts are rebuilt from the tokens' bytes (byte-level BPE splits Cyrillic letters
across tokens, so per-token strings would not do).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from generation.checks.copies import WIDTH, CopyIndex, normalize

#: Tokens of text to rebuild per candidate: a window needs `WIDTH` characters, and every token
#: that is not special holds at least one byte.
TAIL_TOKENS = 4 * WIDTH


def token_bytes(tokenizer: Any, vocab_size: int) -> list[bytes]:
    """Each id's bytes; special tokens (bos, eos, pad) are empty, they are not in the text."""
    special = set(tokenizer.all_special_ids)
    byte_decoder = getattr(tokenizer, "byte_decoder", None) or _gpt2_byte_decoder()
    out: list[bytes] = []
    for token_id in range(vocab_size):
        if token_id in special or token_id >= len(tokenizer):
            out.append(b"")
            continue
        piece = tokenizer.convert_ids_to_tokens(token_id)
        if piece is not None and all(ch in byte_decoder for ch in piece):
            out.append(bytes(byte_decoder[ch] for ch in piece))
        else:  # not a byte-level vocabulary: the token's own text is close enough
            out.append(tokenizer.decode([token_id]).encode("utf-8"))
    return out


def _gpt2_byte_decoder() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


class CopyGuard:
    """Says which candidate sequences have just entered a copy of a training joke."""

    def __init__(self, index: CopyIndex, pieces: Sequence[bytes]) -> None:
        self.index = index
        self.pieces = list(pieces)

    def entered_copy(self, sequences: torch.Tensor) -> torch.Tensor:
        """`sequences` [..., length] (the newest token last) -> bool [...]: True where a window
        ending in the newest token is a training joke's."""
        shape = sequences.shape[:-1]
        rows = sequences[..., -TAIL_TOKENS:].reshape(-1, min(TAIL_TOKENS, sequences.shape[-1]))
        windows: list[str] = []
        owners: list[int] = []
        for row, tokens in enumerate(rows.tolist()):
            new = self._new_windows(tokens)
            windows += new
            owners += [row] * len(new)
        hits = torch.zeros(rows.shape[0], dtype=torch.bool)
        if windows:
            found = self.index.contains(windows)
            for owner, hit in zip(owners, found, strict=True):
                if hit:
                    hits[owner] = True
        return hits.view(shape).to(sequences.device)

    def _new_windows(self, tokens: list[int]) -> list[str]:
        pieces = self.pieces
        newest = pieces[tokens[-1]].decode("utf-8", errors="ignore")
        text = normalize(b"".join(pieces[t] for t in tokens).decode("utf-8", errors="ignore"))
        if len(text) < WIDTH:
            return []
        # the newest token's characters, plus one: normalising may have moved the boundary
        ends = range(max(WIDTH, len(text) - len(newest) - 1), len(text) + 1)
        return [text[end - WIDTH : end] for end in ends]


__all__ = ["TAIL_TOKENS", "CopyGuard", "token_bytes"]
