"""Choosing each row's next token: greedy, or seeded sampling with one generator per row.

Own code because it wins by measurement (`python -m bench.engines`, docs/BENCHMARKS.md, "GPT
engines"): faster than `generate()` and CTranslate2 with many requests, and both draw from one
generator per call (a row's draw depends on its batch-mates), while the served promise is that a
seeded joke is the same alone or batched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

#: chooses the next token of every row: (ids so far [rows, length], float32 scores [rows, vocab])
#: -> token ids [rows]
Picker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def greedy_pick(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    del ids
    return scores.argmax(dim=-1)


class SeededSampler:
    """Temperature / top-k / nucleus sampling, each row with its own `torch.Generator`.

    `torch.multinomial` per row and a full sort of the vocabulary per step for top-p dominate a
    batched step on a CPU. This draws the same distribution with a few tensor passes:

    * one uniform number per row from the row's generator, turned into a token by inverse CDF
      (`cumsum` + `searchsorted`) over the (temperature, top-k)-filtered distribution;
    * top-p by rejection: the drawn token t is in the nucleus iff the probability mass of all
      tokens no more likely than t exceeds 1 - top_p (transformers' rule: drop the least likely
      tokens while their cumulative mass stays <= 1 - top_p); otherwise the row draws again.
      Accepted draws are distributed exactly as the renormalised nucleus, and since the nucleus
      holds at least top_p of the mass, a row needs 1/top_p draws on average.

    A row consumes only its own generator, so its tokens do not depend on its batch-mates.
    """

    def __init__(
        self,
        generators: Sequence[torch.Generator],
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
    ) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.generators = list(generators)
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.top_k = int(top_k or 0)

    def keep(self, indices: Sequence[int]) -> None:
        """Follow a batch that dropped rows: keep the generators of `indices`, in that order."""
        self.generators = [self.generators[i] for i in indices]

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        scores = scores.float()
        if self.temperature != 1.0:
            scores = scores / self.temperature
        if 0 < self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k, dim=-1).values[:, -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        return torch.softmax(scores, dim=-1)

    def pick(self, ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        del ids
        rows = scores.shape[0]
        if rows != len(self.generators):
            raise RuntimeError(f"{rows} rows but {len(self.generators)} generators")
        probs = self.probabilities(scores)
        cdf = probs.cumsum(dim=-1)
        last = probs.shape[-1] - 1
        chosen = torch.empty(rows, dtype=torch.long, device=probs.device)
        pending = torch.arange(rows, device=probs.device)
        while pending.numel():
            draws = torch.cat(
                [
                    torch.rand(1, generator=self.generators[i], device=probs.device)
                    for i in pending.tolist()
                ]
            )
            every = pending.numel() == rows  # the first round: no copies of [rows, vocab]
            sub_cdf = cdf if every else cdf.index_select(0, pending)
            targets = draws * sub_cdf[:, -1]
            tokens = torch.searchsorted(sub_cdf, targets[:, None], right=True)[:, 0]
            tokens = tokens.clamp_(max=last)
            accepted = self._in_nucleus(probs if every else probs.index_select(0, pending), tokens)
            chosen[pending[accepted]] = tokens[accepted]
            pending = pending[~accepted]
        return chosen

    def _in_nucleus(self, probs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Per row: whether the drawn token is in the top-p nucleus of its distribution."""
        if self.top_p >= 1.0:
            return torch.ones_like(tokens, dtype=torch.bool)
        own = probs.gather(1, tokens[:, None])
        # A token likelier than 1 - top_p is in the nucleus whatever the others are (the mass
        # below it includes itself): the usual case with a trained model, and it saves the pass
        # over the vocabulary.
        accepted = own[:, 0] > 1.0 - self.top_p
        if not bool(accepted.all()):
            below = probs.mul(probs <= own).sum(dim=-1)
            accepted = below > 1.0 - self.top_p
        return accepted


__all__ = ["Picker", "SeededSampler", "greedy_pick"]
