"""DiffuSeq training data: jokes packed into fixed-length `[src][SEP][tgt][EOS][PAD…]` rows.

The source is the starting word (the first word of the joke) and the target is the whole joke.
A joke that does not fit into seq_len is dropped rather than cut, so the model never learns to
stop mid-joke.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from generation.diffuseq.data import first_word
from generation.diffuseq.diffusion import Batch

SEP_TOKEN = "[SEP]"
PAD_TOKEN = "[PAD]"


def ensure_special_tokens(tokenizer: Any) -> dict[str, int]:
    """Give the tokenizer a separator and a pad token (added if absent); returns the role ids.

    The end-of-joke marker is the tokenizer's eos (`<|endoftext|>` for our BPE) or, without one,
    the pad token itself.
    """
    extra: dict[str, str] = {}
    if tokenizer.sep_token is None:
        extra["sep_token"] = SEP_TOKEN
    if tokenizer.pad_token is None:
        extra["pad_token"] = PAD_TOKEN
    if extra:
        tokenizer.add_special_tokens(extra)
    sep_id = tokenizer.sep_token_id
    pad_id = tokenizer.pad_token_id
    eos_id = tokenizer.eos_token_id
    if eos_id is None or eos_id in (sep_id, pad_id):
        eos_id = pad_id
    return {"sep_id": int(sep_id), "pad_id": int(pad_id), "eos_id": int(eos_id)}


def read_texts(path: str | Path, limit: int | None = None) -> list[str]:
    out: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            text = json.loads(line)["text"].strip()
            if text:
                out.append(text)
            if limit is not None and len(out) >= limit:
                break
    return out


def tokenize_pairs(
    tokenizer: Any, texts: Sequence[str], max_src_len: int
) -> list[tuple[list[int], list[int]]]:
    """(source ids, target ids) for each joke, batched through the fast tokenizer."""
    words = [first_word(t) for t in texts]
    src = tokenizer(words, add_special_tokens=False)["input_ids"]
    tgt = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    return [(list(s[:max_src_len]), list(g)) for s, g in zip(src, tgt, strict=True)]


def needed_length(pair: tuple[list[int], list[int]]) -> int:
    """Positions a pair occupies: source, SEP, target and one end token."""
    return len(pair[0]) + 1 + len(pair[1]) + 1


def choose_seq_len(
    lengths: Iterable[int], quantile: float = 0.9, lo: int = 48, hi: int = 64
) -> int:
    """Cover `quantile` of the jokes, rounded up to a multiple of 8 and clamped to [lo, hi]."""
    xs = sorted(lengths)
    if not xs:
        return lo
    q = xs[min(len(xs) - 1, int(quantile * len(xs)))]
    return max(lo, min(hi, -(-q // 8) * 8))


def build_tensors(
    pairs: Sequence[tuple[list[int], list[int]]],
    seq_len: int,
    sep_id: int,
    pad_id: int,
    eos_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pack the pairs that fit: ids (N, L), source lengths incl. SEP (N,), target lengths incl.
    the end token (N,)."""
    rows: list[list[int]] = []
    src_lens: list[int] = []
    tgt_lens: list[int] = []
    for src, tgt in pairs:
        if not src or not tgt or needed_length((src, tgt)) > seq_len:
            continue
        row = [*src, sep_id, *tgt, eos_id]
        rows.append(row + [pad_id] * (seq_len - len(row)))
        src_lens.append(len(src) + 1)
        tgt_lens.append(len(tgt) + 1)
    ids = torch.tensor(rows, dtype=torch.long).reshape(-1, seq_len)
    return ids, torch.tensor(src_lens, dtype=torch.long), torch.tensor(tgt_lens, dtype=torch.long)


def make_batch(
    ids: torch.Tensor, src_lens: torch.Tensor, tgt_lens: torch.Tensor, pad_weight: float
) -> Batch:
    """Masks and loss weights: pad after the end token is down-weighted so that the model does not
    collapse to predicting padding everywhere (DiffuSeq issue #50)."""
    pos = torch.arange(ids.shape[1], device=ids.device)[None]
    src_mask = pos < src_lens[:, None]
    tgt_end = src_lens + tgt_lens
    in_tgt = (~src_mask) & (pos < tgt_end[:, None])
    weights = torch.where(in_tgt, 1.0, torch.where(src_mask, 0.0, pad_weight))
    return Batch(ids=ids, src_mask=src_mask, weights=weights.float())
