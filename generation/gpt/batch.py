"""A batch of prompts as tensors: left padding to a width of the prompt's own, token budgets."""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: prompts are padded to a multiple of this many positions (see `pad_width`)
PAD_MULTIPLE = 8


def pad_width(length: int, multiple: int = PAD_MULTIPLE) -> int:
    """The padded width of a prompt of `length` tokens: the next multiple of `multiple` above it.

    Why: a row's floats must not depend on its batch-mates. Left padding changes them — a padded
    batch takes the masked attention kernel and every row sees extra (masked) keys, which moves
    the last bits of its activations — and int8 activation quantization turns such last-bit
    changes into whole quantization steps, enough to flip a beam or a sampled token (seen on the
    shipped model: words whose joke changed between alone and batched). Padding every prompt to a
    width that depends only on its own length, always with at least one pad (so the masked path is
    taken even alone), makes a row's arithmetic the same alone or in any batch of its width.
    """
    return (length // multiple + 1) * multiple


def left_pad(
    rows: Sequence[Sequence[int]],
    pad_id: int,
    device: torch.device | str = "cpu",
    width: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token lists -> left-padded ids + attention mask (one tensor build, no per-row copies).

    `width`: pad to at least this many positions (see `pad_width`).
    """
    width = max([len(row) for row in rows] + [width or 0])
    flat: list[int] = []
    mask_flat: list[int] = []
    for row in rows:
        pad = width - len(row)
        flat.extend([pad_id] * pad)
        flat.extend(row)
        mask_flat.extend([0] * pad + [1] * len(row))
    ids = torch.tensor(flat, dtype=torch.long).view(len(rows), width)
    mask = torch.tensor(mask_flat, dtype=torch.long).view(len(rows), width)
    return ids.to(device), mask.to(device)


def token_budgets(max_new_tokens: int | Sequence[int], count: int) -> list[int]:
    """One new-token budget per row: the same for all rows, or one given per row."""
    if isinstance(max_new_tokens, int):
        budgets = [max_new_tokens] * count
    else:
        budgets = [int(b) for b in max_new_tokens]
    if len(budgets) != count or min(budgets) < 1:
        raise ValueError(f"need {count} token budgets of at least 1, got {max_new_tokens!r}")
    return budgets


__all__ = ["PAD_MULTIPLE", "left_pad", "pad_width", "token_budgets"]
