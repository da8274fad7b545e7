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

import math
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
    traced: bool = False  # keep each hypothesis' log-probabilities (`BeamTrace`)

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
    # [prompts, beams, max_length, 2] or None: per position, the log-probability of the token
    # there and of an end-of-text there instead (`BeamTrace`), for the running beams and slots
    running_trace: torch.Tensor | None = None
    sequence_trace: torch.Tensor | None = None

    @classmethod
    def start(
        cls, ids: torch.Tensor, budgets: list[int], beams: int, fill: int, traced: bool
    ) -> _Hypotheses:
        batch, prompt_len = ids.shape
        dev = ids.device
        running = torch.full(
            (batch, beams, prompt_len + max(budgets)), fill, dtype=torch.long, device=dev
        )
        running[:, :, :prompt_len] = ids[:, None, :]
        running_scores = torch.zeros((batch, beams), dtype=torch.float, device=dev)
        running_scores[:, 1:] = NEG
        trace = None
        if traced:
            trace = torch.zeros((*running.shape, 2), dtype=torch.float, device=dev)
        return cls(
            running=running,
            running_scores=running_scores,
            sequences=running.clone(),
            beam_scores=torch.full((batch, beams), NEG, dtype=torch.float, device=dev),
            lengths=torch.full((batch, beams), prompt_len, dtype=torch.long, device=dev),
            finished=torch.zeros((batch, beams), dtype=torch.bool, device=dev),
            improvable=torch.ones((batch, 1), dtype=torch.bool, device=dev),
            budget=torch.tensor(budgets, device=dev)[:, None],
            running_trace=trace,
            sequence_trace=None if trace is None else trace.clone(),
        )

    def slots(self, prompt: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """A prompt's result slots: sequences, lengths, traces."""
        trace = None if self.sequence_trace is None else self.sequence_trace[prompt]
        return self.sequences[prompt], self.lengths[prompt], trace

    def keep(self, index: torch.Tensor) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                setattr(self, field.name, value[index])


@dataclass(frozen=True)
class BeamTrace:
    """What the model said along one returned hypothesis (natural logs, the raw distribution,
    before any rule): enough to score the prompt and any first part of the new tokens as a
    whole text closed by an end-of-text, as a scorer of `<|endoftext|> text <|endoftext|>`
    would (`log_prob`)."""

    prompt: float  # the prompt's tokens after its first (the first is context, like a bos)
    tokens: list[float]  # each new token, given what precedes it
    ends: list[float]  # an end-of-text instead of each new token

    def log_prob(self, kept: int) -> float | None:
        """The prompt, the first `kept` new tokens, then an end-of-text; None when the search
        never computed that end (the hypothesis stopped there without one)."""
        if not 0 <= kept < len(self.ends):
            return None
        return self.prompt + math.fsum(self.tokens[:kept]) + self.ends[kept]


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
    traces: list[list[BeamTrace]] | None = None,
) -> list[list[list[int]]]:
    """Beam search as transformers does it; per row, the best `num_return_sequences`
    hypotheses (new tokens only, eos included when reached), best first. `decoder`: a
    `FastDecoder` (its `prefill`, `step`, `cut`, pad and eos ids, `ngram_free`).

    `max_new_tokens` may give each row its own budget: a row is then decoded as transformers
    would decode it alone with that budget (its beams all stop when it is spent).
    `width`: left-pad the prompts to at least this width (`pad_width`).
    `copy_guard`: a `generation.gpt.copy_guard.CopyGuard`; a continuation whose text comes to
    share a window with a training joke is dropped that step, as if it were impossible.
    `traces`: a list to fill with, per row, each returned hypothesis' `BeamTrace`.
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
        traced=traces is not None,
    )  # fmt: skip
    logits, state, prompt_scores = _prefill(decoder, ids, mask, num_beams, exact, options.traced)
    hyps = _Hypotheses.start(ids, budgets, num_beams, decoder.pad_id, options.traced)
    done = _search(decoder, hyps, logits, state, options, exact)
    results = []
    for original in range(batch):
        seqs, lens, trace = done[original]
        ranks = range(num_return_sequences)
        results.append([decoder.cut(seqs[r, prompt_len : int(lens[r])].tolist()) for r in ranks])
        if traces is not None and trace is not None and prompt_scores is not None:
            per_rank = [trace[r, prompt_len : int(lens[r])].T.tolist() for r in ranks]
            traces.append([BeamTrace(prompt_scores[original], *pair) for pair in per_rank])
    return results


def _prefill(
    decoder: Any, ids: torch.Tensor, mask: torch.Tensor, beams: int, exact: bool, traced: bool
) -> tuple[torch.Tensor, Any, list[float] | None]:
    """The prompt pass: the first step's logits per beam, the state, and with `traced` each
    prompt's log-probability (`_prompt_log_probs`, from the logits of all its positions)."""
    if exact:
        every, state = decoder.prefill(
            ids.repeat_interleave(beams, 0), mask.repeat_interleave(beams, 0), every_position=traced
        )
        logits = every[:, -1] if traced else every
        every = every[::beams]
    else:  # the beams of a prompt start identical: run the prompt once, then copy its cache
        every, state = decoder.prefill(ids, mask, every_position=traced)
        logits = (every[:, -1] if traced else every).repeat_interleave(beams, 0)
        state.repeat(beams)
    prompt_scores = _prompt_log_probs(every, ids, mask).tolist() if traced else None
    return logits, state, prompt_scores


def _prompt_log_probs(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per prompt: the log-probability of its tokens after the first real one (the first is
    context, as the bos of `<|endoftext|> joke <|endoftext|>` is to a scorer), from the prompt
    pass's logits at every position `[prompts, width, vocab]`; left pads count for nothing."""
    log_probs = F.log_softmax(logits[:, :-1].float(), dim=-1)
    taken = log_probs.gather(-1, ids[:, 1:, None]).squeeze(-1)
    return (taken * mask[:, :-1]).sum(-1)


_Slots = dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]


def _search(
    decoder: Any, hyps: _Hypotheses, logits: torch.Tensor, state: Any, o: _Options, exact: bool
) -> _Slots:
    """The decoding loop; each prompt's result slots (sequences, lengths, scores) by original
    index."""
    done: _Slots = {}
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
        done[original] = hyps.slots(position)
    return done


def _advance(
    h: _Hypotheses, logits: torch.Tensor, cur_len: int, o: _Options
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: score the continuations, move the running beams on, fill the result slots.
    Returns which of the top 2K continuations end (eos or budget) and each new beam's source."""
    n = h.running.shape[0]
    flat_running = h.running[:, :, :cur_len].reshape(n * o.beams, cur_len)
    log_probs = F.log_softmax(logits, dim=-1)
    ends = log_probs[:, o.eos[:1]].view(n, o.beams) if o.traced else None  # a copy, before bans
    log_probs = ban_repeated_ngrams(flat_running, log_probs, o.no_repeat, o.free)
    if cur_len == o.prompt_len and o.first_ban is not None:
        log_probs = log_probs.masked_fill(o.first_ban, float("-inf"))
    vocab = log_probs.shape[-1]
    own = log_probs.view(n, o.beams, vocab)
    log_probs = own + h.running_scores[:, :, None]
    topk_scores, topk_index = torch.topk(log_probs.reshape(n, o.beams * vocab), k=len(o.top_mask))
    source = topk_index // vocab
    tokens = topk_index % vocab
    topk_seqs = torch.take_along_dim(h.running, source[:, :, None], dim=1)
    topk_seqs[:, :, cur_len] = tokens
    topk_trace = None
    if h.running_trace is not None and ends is not None:
        topk_trace = torch.take_along_dim(h.running_trace, source[:, :, None, None], dim=1)
        topk_trace[:, :, cur_len, 0] = own.reshape(n, o.beams * vocab).gather(1, topk_index)
        topk_trace[:, :, cur_len, 1] = ends.gather(1, source)
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
    if topk_trace is not None:
        h.running_trace = torch.take_along_dim(topk_trace, next_index[:, :, None, None], dim=1)
    _fill_slots(h, topk_seqs, topk_scores, hits, cur_len, o, topk_trace)
    return hits, running_source


def _fill_slots(
    h: _Hypotheses,
    topk_seqs: torch.Tensor,
    topk_scores: torch.Tensor,
    hits: torch.Tensor,
    cur_len: int,
    o: _Options,
    topk_trace: torch.Tensor | None = None,
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
    if h.sequence_trace is not None and topk_trace is not None:
        merged_trace = torch.cat([h.sequence_trace, topk_trace], 1)
        h.sequence_trace = torch.take_along_dim(merged_trace, best[:, :, None, None], dim=1)


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
    done: _Slots,
    o: _Options,
) -> list[int]:
    """Take out the prompts whose result slots nothing can enter any more; the ones left."""
    open_ = h.improvable.view(-1) & ~(h.finished.all(-1) & o.stops_when_full)
    if bool(open_.all()):
        return alive
    keep = open_.nonzero(as_tuple=True)[0]
    for position in (~open_).nonzero(as_tuple=True)[0].tolist():
        done[alive[position]] = h.slots(position)
    state.select((keep[:, None] * o.beams + torch.arange(o.beams, device=keep.device)).view(-1))
    h.keep(keep)
    return [alive[i] for i in keep.tolist()]


__all__ = ["NEG", "BeamTrace", "beam_search"]
