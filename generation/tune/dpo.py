"""The DPO objective and the preference measures, over whole jokes.

A joke is scored as the GPT was trained and is served: `<|endoftext|> joke <|endoftext|>`, the
log-probability of every token after the first (`generation.gpt.scoring.encode_jokes`). The whole
joke, not only its continuation after the prompt: a pair may join jokes of different prompts
(shared lemmas, a classic joke), and the prompt's own tokens then belong to what was preferred.

Loss (Rafailov et al., 2023, the sigmoid form): with r(x) = log p_policy(x) - log p_ref(x),
    loss = -log sigmoid(beta * (r(chosen) - r(rejected))).
The reference is the starting model, frozen; its log-probabilities are computed once, before
training, so no second model is kept in memory. beta is the KL anchor: the smaller it is, the
further the policy may move from the reference for the same loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from generation.gpt.scoring import context_length, encode_jokes, padded_batches


def encode(tokenizer: Any, texts: Sequence[str], max_len: int) -> list[list[int]]:
    """Token ids of each joke, cut to the model's context (the cut joke ends without eos)."""
    return [row[:max_len] for row in encode_jokes(tokenizer, texts)]


def sequence_logps(model: Any, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of log p of tokens 1..end of each right-padded row (differentiable)."""
    logits = model(input_ids=ids, attention_mask=mask.long()).logits[:, :-1]
    targets = ids[:, 1:]
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none")
    return -(nll * mask[:, 1:]).sum(dim=1)


def stack(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and mask of `rows`, in their order."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(list(row))
        mask[r, : len(row)] = True
    return ids, mask


@torch.inference_mode()
def joke_logps(
    model: Any, sequences: Mapping[str, Sequence[int]], pad_id: int, batch_size: int = 32
) -> dict[str, float]:
    """key -> log p of the joke, in float32 with dropout off (what evaluation compares)."""
    keys = list(sequences)
    rows = [sequences[k] for k in keys]
    was_training = model.training
    model.eval()
    out: dict[str, float] = {}
    try:
        for order, ids, mask in padded_batches(rows, batch_size, pad_id, "cpu"):
            values = sequence_logps(model, ids, mask)
            for r, i in enumerate(order):
                out[keys[i]] = float(values[r])
    finally:
        model.train(was_training)
    return out


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, per-pair reward margin beta * (r_chosen - r_rejected))."""
    margin = beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))
    return -F.logsigmoid(margin).mean(), margin.detach()


Keyed = tuple[str, str]  # (chosen key, rejected key)


def likelihood_accuracy(pairs: Sequence[Keyed], logps: Mapping[str, float]) -> float | None:
    """Share of pairs whose chosen joke the model finds more likely (ties count half)."""
    if not pairs:
        return None
    wins = sum(_win(logps[c] - logps[r]) for c, r in pairs)
    return wins / len(pairs)


def reward_accuracy(
    pairs: Sequence[Keyed], policy: Mapping[str, float], ref: Mapping[str, float]
) -> float | None:
    """Share of pairs whose chosen joke gained more log-probability than the rejected one
    relative to the reference (DPO's implicit reward; ties count half)."""
    if not pairs:
        return None
    margin = lambda c, r: (policy[c] - ref[c]) - (policy[r] - ref[r])  # noqa: E731
    return sum(_win(margin(c, r)) for c, r in pairs) / len(pairs)


def mean_dpo_loss(
    pairs: Sequence[Keyed], policy: Mapping[str, float], ref: Mapping[str, float], beta: float
) -> float | None:
    if not pairs:
        return None
    tensor = lambda values: torch.tensor(values, dtype=torch.float64)  # noqa: E731
    loss, _ = dpo_loss(
        tensor([policy[c] for c, _ in pairs]),
        tensor([policy[r] for _, r in pairs]),
        tensor([ref[c] for c, _ in pairs]),
        tensor([ref[r] for _, r in pairs]),
        beta,
    )
    return float(loss)


def _win(margin: float) -> float:
    return 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0


def max_length(model: Any) -> int:
    return context_length(model)


__all__ = [
    "dpo_loss",
    "encode",
    "joke_logps",
    "likelihood_accuracy",
    "max_length",
    "mean_dpo_loss",
    "reward_accuracy",
    "sequence_logps",
    "stack",
]
