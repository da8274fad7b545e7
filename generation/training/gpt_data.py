"""GPT training data: every joke one ``<|endoftext|> joke <|endoftext|>`` row of a padded tensor.

Every split is tokenized once into a padded int64 tensor that lives on the device; a step only
indexes it, so there is no per-example Python work in the loop. Padding waste is kept small by
length bucketing (batches are cut from length-sorted chunks of 50 batches, then shuffled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class TokenizedSplit:
    tokens: torch.Tensor  # [N, L] int64, right-padded with pad id
    lengths: np.ndarray  # [N] real lengths (bos + joke + eos, possibly truncated)
    chars: int  # characters of the jokes, for bits per character
    truncated: int  # jokes cut to fit n_positions


def tokenize_split(
    texts: list[str], tokenizer: Any, max_len: int, device: torch.device | str = "cpu"
) -> TokenizedSplit:
    """Tokenize jokes once into ``<eot> joke <eot>`` rows of a padded tensor."""
    eot, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    seqs = [[eot, *row, eot][:max_len] for row in ids]
    truncated = sum(1 for row in ids if len(row) + 2 > max_len)
    width = max((len(s) for s in seqs), default=1)
    arr = np.full((len(seqs), width), pad, dtype=np.int64)
    lengths = np.zeros(len(seqs), dtype=np.int64)
    for i, s in enumerate(seqs):
        arr[i, : len(s)] = s
        lengths[i] = len(s)
    return TokenizedSplit(
        tokens=torch.from_numpy(arr).to(device),
        lengths=lengths,
        chars=sum(len(t) for t in texts),
        truncated=truncated,
    )


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Index batches for one epoch: shuffled, length-bucketed in chunks of 50 batches."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches: list[np.ndarray] = []
    for start in range(0, len(order), chunk):
        part = order[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)  # type: ignore[arg-type]
    return batches


def lm_batch(
    split: TokenizedSplit, idx: np.ndarray, pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input ids and labels (pads ignored) of the rows `idx`, cut to their longest row."""
    width = int(split.lengths[idx].max())
    width = min(split.tokens.shape[1], -(-width // 8) * 8)  # multiple of 8 for tensor cores
    index = torch.from_numpy(idx).to(split.tokens.device, non_blocking=True)
    x = split.tokens.index_select(0, index)[:, :width]
    labels = x.masked_fill(x == pad_id, -100)
    return x, labels


def oversampled(rows: list[dict[str, Any]], specs: list[str]) -> list[str]:
    """Train texts with the jokes of some sources repeated, ``specs`` like ``["humornet=4"]``.

    Why: the open data is mostly dialogue while people (and the CleanComedy gold set) tell mostly
    narrative jokes; repeating the few narrative sources shifts the mix without new data.
    """
    weights: dict[str, int] = {}
    for spec in specs:
        name, sep, k = spec.partition("=")
        if not sep or not k.isdigit() or int(k) < 1:
            raise SystemExit(f"--oversample wants SOURCE=K with K >= 1, got {spec!r}")
        weights[name] = int(k)
    known = {row.get("source", "") for row in rows}
    unknown = sorted(set(weights) - known)
    if unknown:
        raise SystemExit(f"--oversample: no train jokes from {', '.join(unknown)}")
    return [row["text"] for row in rows for _ in range(weights.get(row.get("source", ""), 1))]
