"""Beam search over `FastDecoder`'s model calls, step for step as transformers' beam search.

Own code because no kept engine does the job, by measurement (`python -m bench.engines`,
docs/BENCHMARKS.md, "GPT engines"): `generate()` with the same int8 layers and rules was no faster
and its jokes changed with their batch-mates; CTranslate2 was faster but has no per-step hook for
the served rules (first-token ban, layout tokens free of the n-gram ban), so its jokes glued onto
the word and were less often usable.

It mirrors transformers' vectorised beam search (top 2K continuations, finished hypotheses scored
with the length penalty, the same early-stop heuristic, the cache reordered by beam), so the
tests can hold it to `generate`'s tokens. Savings `generate` does not make, switched off by
`exact=True`: the prompt runs through the model once and its cache is copied to the beams, and a
prompt whose result can no longer change leaves the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F

from generation import interrupt
from generation.gpt.batch import left_pad, token_budgets
from generation.gpt.ngrams import ban_repeated_ngrams

NEG = -1.0e9  # transformers' "impossible" score in beam search; kept identical on purpose


@dataclass(frozen=True)
class _Options:
    beams: int
    prompt_len: int
    no_repeat: int
    length_penalty: float
    early_stopping: bool | str
    first_ban: torch.Tensor | None
    free: torch.Tensor | None  # tokens whose n-grams may repeat (`ban_repeated_ngrams`)
    eos: torch.Tensor
    top_mask: torch.Tensor  # [2K]: the first K continuations may finish a hypothesis
    guard: Any = None  # a `CopyGuard`: continuations that enter a training joke are closed

    @property
    def stops_when_full(self) -> bool:
        return self.early_stopping is True


@dataclass
class _Hypotheses:
    """Per prompt still in the batch: the running beams and the result slots (finished ones)."""

    running: torch.Tensor  # [prompts, beams, max_length]
    running_scores: torch.Tensor  # [prompts, beams]
    sequences: torch.Tensor  # [prompts, beams, max_length]: the result slots
    beam_scores: torch.Tensor  # [prompts, beams]
    lengths: torch.Tensor  # [prompts, beams]
    finished: torch.Tensor  # [prompts, beams]: slot holds a finished hypothesis
    improvable: torch.Tensor  # [prompts, 1]: a running beam may still enter the slots
    budget: torch.Tensor  # [prompts, 1]: new tokens allowed

    @classmethod
    def start(cls, ids: torch.Tensor, budgets: list[int], beams: int, fill: int) -> _Hypotheses:
        batch, prompt_len = ids.shape
        dev = ids.device
        running = torch.full(
            (batch, beams, prompt_len + max(budgets)), fill, dtype=torch.long, device=dev
        )
        running[:, :, :prompt_len] = ids[:, None, :]
        running_scores = torch.zeros((batch, beams), dtype=torch.float, device=dev)
        running_scores[:, 1:] = NEG
        return cls(
            running=running,
            running_scores=running_scores,
            sequences=running.clone(),
            beam_scores=torch.full((batch, beams), NEG, dtype=torch.float, device=dev),
            lengths=torch.full((batch, beams), prompt_len, dtype=torch.long, device=dev),
            finished=torch.zeros((batch, beams), dtype=torch.bool, device=dev),
            improvable=torch.ones((batch, 1), dtype=torch.bool, device=dev),
            budget=torch.tensor(budgets, device=dev)[:, None],
        )

    def keep(self, index: torch.Tensor) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name)[index])


def beam_search(
    decoder: Any,
    rows: Sequence[Sequence[int]],
    *,
    num_beams: int,
    max_new_tokens: int | Sequence[int],
    num_return_sequences: int = 1,
    no_repeat_ngram_size: int = 0,
    length_penalty: float = 1.0,
    early_stopping: bool | str = False,
    exact: bool = False,
    first_ban: torch.Tensor | None = None,
    width: int | None = None,
    copy_guard: Any = None,
) -> list[list[list[int]]]:
    """Beam search as transformers does it; per row, the best `num_return_sequences`
    hypotheses (new tokens only, eos included when reached), best first. `decoder`: a
    `FastDecoder` (its `prefill`, `step`, `cut`, pad and eos ids, `ngram_free`).

    `max_new_tokens` may give each row its own budget: a row is then decoded as transformers
    would decode it alone with that budget (its beams all stop when it is spent).
    `width`: left-pad the prompts to at least this width (`pad_width`).
    `copy_guard`: a `generation.gpt.copy_guard.CopyGuard`; a continuation whose text comes to
    share a window with a training joke is dropped that step, as if it were impossible.
    """
    if not rows:
        return []
    if num_return_sequences > num_beams:
        raise ValueError("num_return_sequences cannot exceed num_beams")
    ids, mask = left_pad(rows, decoder.pad_id, decoder.device, width)
    batch, prompt_len = ids.shape
    budgets = token_budgets(max_new_tokens, batch)
    keep_k = max(2, 1 + len(decoder.eos_ids)) * num_beams
    options = _Options(
        beams=num_beams, prompt_len=prompt_len, no_repeat=no_repeat_ngram_size,
        length_penalty=length_penalty, early_stopping=early_stopping, first_ban=first_ban,
        free=decoder.ngram_free, eos=decoder.eos_tensor,
        top_mask=torch.arange(keep_k, device=decoder.device) < num_beams, guard=copy_guard,
    )  # fmt: skip
    if exact:
        logits, state = decoder.prefill(
            ids.repeat_interleave(num_beams, 0), mask.repeat_interleave(num_beams, 0)
        )
    else:  # the beams of a prompt start identical: run the prompt once, then copy its cache
        logits, state = decoder.prefill(ids, mask)
        logits = logits.repeat_interleave(num_beams, 0)
        state.repeat(num_beams)
    hyps = _Hypotheses.start(ids, budgets, num_beams, decoder.pad_id)
    done = _search(decoder, hyps, logits, state, options, exact)
    results = []
    for original in range(batch):
        seqs, lens = done[original]
        ranks = range(num_return_sequences)
        results.append([decoder.cut(seqs[r, prompt_len : int(lens[r])].tolist()) for r in ranks])
    return results


def _search(
    decoder: Any, hyps: _Hypotheses, logits: torch.Tensor, state: Any, o: _Options, exact: bool
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """The decoding loop; each prompt's result slots (sequences, lengths) by original index."""
    done: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    alive = list(range(hyps.running.shape[0]))
    cur_len = o.prompt_len
    while True:
        interrupt.check()
        hits, source = _advance(hyps, logits, cur_len, o)
        cur_len += 1
        hyps.improvable = _improvable(hyps, cur_len, o)
        if (
            not bool(hyps.improvable.any())
            or (bool(hyps.finished.all()) and o.stops_when_full)
            or bool(hits.all())
        ):
            break
        # transformers reorders the cache by the chosen beams' sources
        offsets = torch.arange(len(alive), device=source.device)[:, None] * o.beams
        state.select((source + offsets).view(-1))
        if not exact:
            alive = _drop_closed(hyps, state, alive, done, o)
        logits = decoder.step(hyps.running[:, :, cur_len - 1].reshape(-1), state)
    for position, original in enumerate(alive):
        done[original] = (hyps.sequences[position], hyps.lengths[position])
    return done


def _advance(
    h: _Hypotheses, logits: torch.Tensor, cur_len: int, o: _Options
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: score the continuations, move the running beams on, fill the result slots.
    Returns which of the top 2K continuations end (eos or budget) and each new beam's source."""
    n = h.running.shape[0]
    flat_running = h.running[:, :, :cur_len].reshape(n * o.beams, cur_len)
    log_probs = F.log_softmax(logits, dim=-1)
    log_probs = ban_repeated_ngrams(flat_running, log_probs, o.no_repeat, o.free)
    if cur_len == o.prompt_len and o.first_ban is not None:
        log_probs = log_probs.masked_fill(o.first_ban, float("-inf"))
    vocab = log_probs.shape[-1]
    log_probs = log_probs.view(n, o.beams, vocab) + h.running_scores[:, :, None]
    topk_scores, topk_index = torch.topk(log_probs.reshape(n, o.beams * vocab), k=len(o.top_mask))
    source = topk_index // vocab
    tokens = topk_index % vocab
    topk_seqs = torch.take_along_dim(h.running, source[:, :, None], dim=1)
    topk_seqs[:, :, cur_len] = tokens
    if o.guard is not None:
        copied = o.guard.entered_copy(topk_seqs[:, :, : cur_len + 1])
        topk_scores = topk_scores.masked_fill(copied, float("-inf"))
    hits = torch.isin(tokens, o.eos) | (cur_len + 1 - o.prompt_len >= h.budget)

    # the best unfinished continuations run on
    run_scores = topk_scores + hits.to(torch.float32) * NEG
    next_index = torch.topk(run_scores, k=o.beams)[1]
    h.running = torch.take_along_dim(topk_seqs, next_index[:, :, None], dim=1)
    h.running_scores = torch.take_along_dim(run_scores, next_index, dim=1)
    running_source = torch.take_along_dim(source, next_index, dim=1)
    _fill_slots(h, topk_seqs, topk_scores, hits, cur_len, o)
    return hits, running_source


def _fill_slots(
    h: _Hypotheses,
    topk_seqs: torch.Tensor,
    topk_scores: torch.Tensor,
    hits: torch.Tensor,
    cur_len: int,
    o: _Options,
) -> None:
    """Finished continuations among the top `beams` compete with the slots' hypotheses."""
    just_finished = hits & o.top_mask[None, :]
    final = topk_scores / ((cur_len + 1 - o.prompt_len) ** o.length_penalty)
    full = torch.all(h.finished, dim=-1, keepdim=True) & o.stops_when_full
    final = final + full.to(torch.float32) * NEG
    final = final + (~h.improvable).to(torch.float32) * NEG
    final = final + (~just_finished) * NEG
    merged_seqs = torch.cat([h.sequences, topk_seqs], 1)
    merged_scores = torch.cat([h.beam_scores, final], 1)
    merged_lengths = torch.cat([h.lengths, torch.full_like(hits, cur_len + 1, dtype=torch.long)], 1)
    merged_finished = torch.cat([h.finished, just_finished], 1)
    best = torch.topk(merged_scores, k=o.beams)[1]
    h.sequences = torch.take_along_dim(merged_seqs, best[:, :, None], dim=1)
    h.beam_scores = torch.take_along_dim(merged_scores, best, dim=1)
    h.lengths = torch.take_along_dim(merged_lengths, best, dim=1)
    h.finished = torch.take_along_dim(merged_finished, best, dim=1)


def _improvable(h: _Hypotheses, cur_len: int, o: _Options) -> torch.Tensor:
    """transformers' early-stop heuristic: can a running beam still beat a finished one?"""
    best_length: torch.Tensor | int
    if o.early_stopping == "never" and o.length_penalty > 0.0:
        best_length = h.budget  # the longest a hypothesis may become
    else:
        best_length = cur_len - o.prompt_len
    best_running = h.running_scores[:, :1] / (best_length**o.length_penalty)
    worst_finished = torch.where(h.finished, torch.min(h.beam_scores, dim=1, keepdim=True)[0], NEG)
    return h.improvable & torch.any(best_running > worst_finished, dim=-1, keepdim=True)


def _drop_closed(
    h: _Hypotheses,
    state: Any,
    alive: list[int],
    done: dict[int, tuple[torch.Tensor, torch.Tensor]],
    o: _Options,
) -> list[int]:
    """Take out the prompts whose result slots nothing can enter any more; the ones left."""
    open_ = h.improvable.view(-1) & ~(h.finished.all(-1) & o.stops_when_full)
    if bool(open_.all()):
        return alive
    keep = open_.nonzero(as_tuple=True)[0]
    for position in (~open_).nonzero(as_tuple=True)[0].tolist():
        done[alive[position]] = (h.sequences[position], h.lengths[position])
    state.select((keep[:, None] * o.beams + torch.arange(o.beams, device=keep.device)).view(-1))
    h.keep(keep)
    return [alive[i] for i in keep.tolist()]


__all__ = ["NEG", "beam_search"]
