"""A hand-written KV-cache decoding loop for causal LMs: how `GptBackend` decodes.

Own code because it wins by measurement (`python -m bench.engines`, docs/BENCHMARKS.md, "GPT
engines"): with the same int8 layers and rules, transformers' `generate()` was slower or no faster
and wrote some jokes differently alone and batched; CTranslate2 samples slower and cannot apply the
served rules (see `generation.gpt.beam`, `generation.gpt.sampler`).

What the loop does per step is what `generate` does, so that its outputs are the same token for
token (the tests hold it to that):

* the prompt goes through the model once with left padding, an attention mask and position ids
  from the mask (`cumsum - 1`, pads at 0); the mask is dropped when there is no padding, as
  `generate` drops it; only the last position's logits are computed (`logits_to_keep=1`;
  all of them when beam search keeps its traces, `generation.gpt.beam.BeamTrace`);
  `GptBackend` pads every prompt to `pad_width` of its own length, so that a row computes the
  same floats alone or in any batch;
* each later step feeds one token per row with position `last + 1` and the grown mask; for a
  plain GPT-2 (`is_plain_gpt2`) the step is written out with the model's own modules
  (`generation.gpt.gpt2_step`: the same floats as the model's forward, tested bit for bit, minus
  its per-call bookkeeping), for any other model it is the model's forward;
* logits are cast to float32; `no_repeat_ngram_size` bans the same tokens as transformers'
  processor (pads included), but vectorised (`generation.gpt.ngrams`);
* sampling / greedy: `pick(ids, scores)` chooses one token per row (`generation.gpt.sampler`);
  finished rows get the pad token, as in `generate`; beam search: `generation.gpt.beam`.

Unless `exact=True` (for bit-exact comparisons), finished rows leave the batch, so later steps only
compute what is still running. That changes the shapes the matrix kernels see, which may move a
float's last bit, never which rows a row depends on.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from generation import interrupt
from generation.gpt.batch import left_pad, token_budgets
from generation.gpt.beam import beam_search
from generation.gpt.gpt2_step import Gpt2Step
from generation.gpt.ngrams import ban_repeated_ngrams
from generation.gpt.sampler import Picker, greedy_pick

#: Model calls with less work than this (rows x weights of the matrix layers, i.e. multiply-adds)
#: run on one thread unless `one_thread_below_rows` says otherwise (`FastDecoder`).
ONE_THREAD_BELOW_WORK = 3.5e9

_Method = TypeVar("_Method", bound=Callable[..., Any])


def is_plain_gpt2(model: Any) -> bool:
    """Whether `FastDecoder` may run decoding steps through its written-out GPT-2 step: a
    `GPT2LMHeadModel` with sdpa attention, no cross-attention, in eval mode."""
    config = getattr(model, "config", None)
    return (
        type(model).__name__ == "GPT2LMHeadModel"
        and getattr(config, "_attn_implementation", None) == "sdpa"
        and not getattr(config, "add_cross_attention", False)
        and not model.training
    )


def matrix_weights(model: Any) -> int:
    """Weights of the model's matrix layers (linear, transformers' `Conv1D`, int8 variants):
    the multiply-adds one row of a decoding step costs."""
    total = 0
    for module in model.modules():
        if hasattr(module, "in_features") and hasattr(module, "out_features"):
            total += int(module.in_features) * int(module.out_features)
        elif hasattr(module, "nx") and hasattr(module, "nf"):  # transformers' Conv1D
            total += int(module.nx) * int(module.nf)
    return total


def _restores_threads(method: _Method) -> _Method:
    """Run a decoding method with torch's thread count as found, and put it back afterwards
    (`FastDecoder._threads_for` lowers it for small model calls)."""

    @functools.wraps(method)
    def run(self: FastDecoder, *args: Any, **kwargs: Any) -> Any:
        self._most_threads = torch.get_num_threads()
        self._threads_now = self._most_threads
        try:
            return method(self, *args, **kwargs)
        finally:
            if self._threads_now != self._most_threads:
                torch.set_num_threads(self._most_threads)

    return run  # type: ignore[return-value]


@dataclass
class _State:
    """What a decoding step needs besides the ids: cache, mask (None = no padding), positions."""

    cache: Any
    mask: torch.Tensor | None
    positions: torch.Tensor  # [rows, 1]: the last position fed
    plain: bool = False  # every cache layer a `DynamicLayer` (the written-out GPT-2 step may run)
    gpt2: Gpt2Step | None = None  # that step over the model's modules, looked up once

    def repeat(self, times: int) -> None:
        self.cache.batch_repeat_interleave(times)
        if self.mask is not None:
            self.mask = self.mask.repeat_interleave(times, 0)
        self.positions = self.positions.repeat_interleave(times, 0)

    def select(self, index: torch.Tensor) -> None:
        self.cache.reorder_cache(index)
        if self.mask is not None:
            self.mask = self.mask.index_select(0, index)
        self.positions = self.positions.index_select(0, index)


class FastDecoder:
    """KV-cache decoding loops over a loaded transformers causal LM (GPT-2 family tested)."""

    def __init__(
        self,
        model: Any,
        *,
        pad_id: int,
        eos_ids: Sequence[int],
        one_thread_below_rows: int | None = None,
    ) -> None:
        """`one_thread_below_rows`: a model call with fewer rows (token positions: prompts x width
        for the prompt pass, rows x 1 for a step) than this runs on one intra-op thread (0:
        always on all of torch's threads; None: from the model's size, so that calls of less
        than `ONE_THREAD_BELOW_WORK` multiply-adds do).

        Why: on a CPU, a call with a few rows is a chain of small matrix-vector products; each
        parallel region has to wake the other OpenMP threads, which sleep between regions
        (`OMP_WAIT_POLICY=PASSIVE`, the service's default), and that costs more than the second
        core brings (`python -m bench.threads`, docs/BENCHMARKS.md §8). The thread count must not
        change any result (a seeded joke is the same alone or batched): the int8 matrix products,
        norms and activations split their work by rows or output columns, never inside a sum
        (tested); CPU attention does not, so it always runs on one thread (`_attention`), and so
        does the prompt pass, which uses the model's own attention (checked by
        tests/test_quantize.py).
        """
        self.model = model
        self.pad_id = int(pad_id)
        self.eos_ids = [int(i) for i in eos_ids]
        self.device = next(model.parameters()).device
        self.eos_tensor = torch.tensor(self.eos_ids, dtype=torch.long, device=self.device)
        if one_thread_below_rows is None:
            one_thread_below_rows = round(ONE_THREAD_BELOW_WORK / max(1, matrix_weights(model)))
        self.one_thread_below_rows = int(one_thread_below_rows)
        self._most_threads = self._threads_now = torch.get_num_threads()
        self.plain_gpt2 = is_plain_gpt2(model)
        # tokens whose n-grams may repeat (see `ban_repeated_ngrams`); set by the backend
        self.ngram_free: torch.Tensor | None = None

    # -- model calls -----------------------------------------------------------------------------

    def _threads_for(self, rows: int) -> None:
        """One thread for a call of fewer rows than `one_thread_below_rows`, and for any call
        that goes through the model's own forward (not a plain GPT-2); all threads otherwise."""
        small = rows < self.one_thread_below_rows or not self.plain_gpt2
        self._set_threads(1 if small else self._most_threads)

    def _set_threads(self, wanted: int) -> None:
        if self.device.type != "cpu":
            return
        if wanted != self._threads_now:
            torch.set_num_threads(wanted)
            self._threads_now = wanted

    def prefill(
        self, ids: torch.Tensor, mask: torch.Tensor, *, every_position: bool = False
    ) -> tuple[torch.Tensor, _State]:
        """The prompt pass: the last position's float32 logits and the state to step from.
        `every_position`: the logits of every position instead, `[rows, width, vocab]` (the
        output layer works row by row, so the last position's are the same)."""
        # always one thread: the prompt pass goes through the model's own forward, whose
        # attention (CPU sdpa) splits its work differently with two threads alone and in a batch
        self._set_threads(1)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        attention = None if bool((mask == 1).all()) else mask
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids,
            attention_mask=attention,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=0 if every_position else 1,
        )
        plain = all(type(layer) is DynamicLayer for layer in getattr(cache, "layers", [None]))
        state = _State(cache=cache, mask=attention, positions=positions[:, -1:], plain=plain)
        if plain and self.plain_gpt2:
            state.gpt2 = Gpt2Step.of(self.model)
        return (out.logits if every_position else out.logits[:, -1, :]).float(), state

    def step(self, tokens: torch.Tensor, state: _State) -> torch.Tensor:
        """Feed one token per row; the next float32 logits."""
        self._threads_for(tokens.shape[0])
        if state.mask is not None:
            state.mask = torch.cat([state.mask, state.mask.new_ones((state.mask.shape[0], 1))], 1)
        state.positions = state.positions + 1
        if self.plain_gpt2 and state.plain:
            return self._gpt2_step(tokens, state)
        out = self.model(
            input_ids=tokens[:, None],
            attention_mask=state.mask,
            position_ids=state.positions,
            cache=state.cache,
            use_cache=True,
        )
        return out.logits[:, -1, :].float()

    def _gpt2_step(self, tokens: torch.Tensor, state: _State) -> torch.Tensor:
        """One token per row through a GPT-2, written out (`generation.gpt.gpt2_step`): the same
        floats as the model's forward, without its per-call bookkeeping, a real share of a step
        on a few rows (docs/BENCHMARKS.md)."""
        if state.gpt2 is None:
            state.gpt2 = Gpt2Step.of(self.model)
        layers = state.cache.layers
        return state.gpt2(tokens, state.positions, state.mask, layers, self._attention)

    def _attention(
        self, query: torch.Tensor, layer: Any, mask: torch.Tensor | None, scale: float
    ) -> torch.Tensor:
        """sdpa, always on one thread. Why: with two threads the CPU kernel splits a row's work
        differently depending on how many rows share the call, so a row's attention output moves
        in its last bits between alone and batched (most rows, when measured), and the next int8
        layer can turn that into a different token. Matrix products and norms are not affected
        (tested); attention over at most a few hundred keys is cheap on one thread."""
        one = self._threads_now != 1
        if one:
            torch.set_num_threads(1)
        try:
            return F.scaled_dot_product_attention(
                query,
                layer.keys,
                layer.values,
                attn_mask=mask,
                dropout_p=0.0,
                scale=scale,
                is_causal=False,
            )
        finally:
            if one:
                torch.set_num_threads(self._threads_now)

    def cut(self, tokens: list[int]) -> list[int]:
        """New tokens up to and including the first eos (later ones are padding)."""
        for position, token in enumerate(tokens):
            if token in self.eos_ids:
                return tokens[: position + 1]
        return tokens

    # -- decoding --------------------------------------------------------------------------------

    @_restores_threads
    def sample(
        self,
        rows: Sequence[Sequence[int]],
        *,
        max_new_tokens: int | Sequence[int],
        pick: Picker | None = None,
        no_repeat_ngram_size: int = 0,
        exact: bool = False,
        on_prune: Callable[[list[int]], None] | None = None,
        first_ban: torch.Tensor | None = None,
        width: int | None = None,
    ) -> list[list[int]]:
        """Decode every row to its token budget or its eos; return the new tokens of each row
        (eos included when reached). `max_new_tokens`: one budget for all rows or one per row.
        `pick` defaults to greedy. `first_ban`: a boolean mask over the vocabulary of tokens the
        first new token may not be. `width`: left-pad the prompts to at least this width.

        Unless `exact`, finished rows leave the batch; `on_prune(kept)` is then called with the
        indices (into the rows still running before the cut) that stay, so that a picker holding
        per-row state (generators) can follow (`SeededSampler.keep`).
        """
        if not rows:
            return []
        pick = pick or greedy_pick
        ids, mask = left_pad(rows, self.pad_id, self.device, width)
        budgets = token_budgets(max_new_tokens, ids.shape[0])
        logits, state = self.prefill(ids, mask)
        run = _Rows(ids, torch.tensor(budgets, device=self.device))
        generated: list[torch.Tensor] = []  # per step: a token per original row (pad when done)
        for step in range(max(budgets)):
            interrupt.check()
            scores = ban_repeated_ngrams(run.seqs, logits, no_repeat_ngram_size, self.ngram_free)
            if step == 0 and first_ban is not None:
                scores = scores.masked_fill(first_ban, float("-inf"))
            chosen = pick(run.seqs, scores)
            chosen = torch.where(run.unfinished, chosen, torch.full_like(chosen, self.pad_id))
            generated.append(run.full(chosen, self.pad_id))
            run.append(chosen, step, self.eos_tensor)
            if not bool(run.unfinished.any()):
                break
            if not exact and not bool(run.unfinished.all()):
                keep = run.unfinished.nonzero(as_tuple=True)[0]
                state.select(keep)
                run.keep(keep)
                if on_prune is not None:
                    on_prune(keep.tolist())
            logits = self.step(run.last, state)
        table = torch.stack(generated, 1).tolist()
        return [self.cut(tokens[:limit]) for tokens, limit in zip(table, budgets, strict=True)]

    @_restores_threads
    def beam_search(self, rows: Sequence[Sequence[int]], **options: Any) -> list[list[list[int]]]:
        """Beam search as transformers does it: `generation.gpt.beam.beam_search` (options and
        result there) on this decoder's model calls."""
        return beam_search(self, rows, **options)


class _Rows:
    """The rows `FastDecoder.sample` is still decoding, and what it knows about each."""

    def __init__(self, ids: torch.Tensor, budget: torch.Tensor) -> None:
        count = ids.shape[0]
        self.count = count
        self.seqs = ids
        self.budget = budget
        self.alive = torch.arange(count, device=ids.device)  # original index of each running row
        self.unfinished = torch.ones(count, dtype=torch.bool, device=ids.device)
        self.last = ids[:, -1]

    def full(self, chosen: torch.Tensor, pad_id: int) -> torch.Tensor:
        """`chosen` spread over all original rows (pad for those that left)."""
        full = torch.full((self.count,), pad_id, dtype=torch.long, device=chosen.device)
        full[self.alive] = chosen
        return full

    def append(self, chosen: torch.Tensor, step: int, eos: torch.Tensor) -> None:
        self.seqs = torch.cat([self.seqs, chosen[:, None]], 1)
        self.last = chosen
        self.unfinished = self.unfinished & ~torch.isin(chosen, eos) & (self.budget > step + 1)

    def keep(self, index: torch.Tensor) -> None:
        for name in ("seqs", "last", "alive", "budget", "unfinished"):
            setattr(self, name, getattr(self, name).index_select(0, index))


__all__ = ["ONE_THREAD_BELOW_WORK", "FastDecoder", "is_plain_gpt2", "matrix_weights"]
