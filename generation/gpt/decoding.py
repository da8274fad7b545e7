"""A hand-written KV-cache decoding loop for causal LMs: the fast path of `GptBackend`.

Why: at our sizes (a 125M or smaller GPT-2, 20–50 new tokens, batches of up to 32 prompts)
`model.generate` spends a real share of each step outside the model — input preparation, stopping
criteria, logits-processor plumbing, per-row Python in `NoRepeatNGramLogitsProcessor`. A plain
loop over `model(input_ids, cache=...)` was measured 1.3–2x faster at batch 32 on a 2-core CPU
(docs/BENCHMARKS.md). What the loop does per step is exactly what `generate` does, so that its
outputs are the same token for token:

* the prompt goes through the model once with left padding, an attention mask and position ids
  from the mask (`cumsum - 1`, pads at 0); the mask is dropped when there is no padding, as
  `generate` drops it; only the last position's logits are computed (`logits_to_keep=1`);
  `GptBackend` pads every prompt to `pad_width` of its own length, so that a row computes the
  same floats alone or in any batch (see `pad_width`);
* each later step feeds one token per row with position `last + 1` and the grown mask; for a
  plain GPT-2 (`is_plain_gpt2`) the step is written out here with the model's own modules
  (`FastDecoder._gpt2_step`: the same floats as the model's forward, tested bit for bit, minus
  its per-call bookkeeping), for any other model it is the model's forward;
* logits are cast to float32; `no_repeat_ngram_size` bans the same tokens as transformers'
  processor (pads included), but vectorised (`ban_repeated_ngrams`);
* sampling / greedy: `pick(ids, scores)` chooses one token per row (a `RowSampler.pick` or argmax);
  finished rows get the pad token, as in `generate`;
* beam search mirrors transformers' vectorised beam search step for step (top 2K continuations,
  finished hypotheses scored with the length penalty, the same early-stop heuristic, the cache
  reordered by beam).

Savings `generate` does not make, on by default and switched off by `exact=True` (for bit-exact
comparisons): rows (sampling) and whole prompts (beam search) that are finished leave the batch,
so later steps only compute what is still running; beam search runs each prompt through the model
once and copies its cache to the beams, instead of running it once per beam. Both change the
shapes the matrix kernels see, which may move a float's last bit, never which rows a row depends
on; the tests check that the outputs stay those of `generate`.
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

#: chooses the next token of every row: (ids so far [rows, length], float32 scores [rows, vocab])
#: -> token ids [rows]
Picker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

NEG = -1.0e9  # transformers' "impossible" score in beam search; kept identical on purpose

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


def greedy_pick(ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    del ids
    return scores.argmax(dim=-1)


class SeededSampler:
    """Temperature / top-k / nucleus sampling, each row with its own `torch.Generator`.

    `torch.multinomial` per row (what `RowSampler` does inside `generate`) and a full sort of the
    vocabulary per step for top-p dominate a batched step on a CPU (tens of ms for 32 x 50k).
    This draws the same distribution with a few tensor passes:

    * one uniform number per row from the row's generator, turned into a token by inverse CDF
      (`cumsum` + `searchsorted`) over the (temperature, top-k)-filtered distribution;
    * top-p by rejection: the drawn token t is in the nucleus iff the probability mass of all
      tokens no more likely than t exceeds 1 - top_p (transformers' rule: drop the least likely
      tokens while their cumulative mass stays <= 1 - top_p); otherwise the row draws again.
      Accepted draws are distributed exactly as the renormalised nucleus, and since the nucleus
      holds at least top_p of the mass, a row needs 1/top_p draws on average.

    A row consumes only its own generator, so its tokens do not depend on its batch-mates
    (the seed -> text mapping differs from `RowSampler`'s, which uses `torch.multinomial`).
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
            if self.top_p < 1.0:
                sub = probs if every else probs.index_select(0, pending)
                own = sub.gather(1, tokens[:, None])
                # A token likelier than 1 - top_p is in the nucleus whatever the others are (the
                # mass below it includes itself): the usual case with a trained model, and it
                # saves the pass over the vocabulary.
                accepted = own[:, 0] > 1.0 - self.top_p
                if not bool(accepted.all()):
                    below = sub.mul(sub <= own).sum(dim=-1)
                    accepted = below > 1.0 - self.top_p
            else:
                accepted = torch.ones_like(tokens, dtype=torch.bool)
            chosen[pending[accepted]] = tokens[accepted]
            pending = pending[~accepted]
        return chosen


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


def _budgets(max_new_tokens: int | Sequence[int], count: int) -> list[int]:
    if isinstance(max_new_tokens, int):
        budgets = [max_new_tokens] * count
    else:
        budgets = [int(b) for b in max_new_tokens]
    if len(budgets) != count or min(budgets) < 1:
        raise ValueError(f"need {count} token budgets of at least 1, got {max_new_tokens!r}")
    return budgets


#: prompts are padded to a multiple of this many positions (see `pad_width`)
PAD_MULTIPLE = 8


def pad_width(length: int, multiple: int = PAD_MULTIPLE) -> int:
    """The padded width of a prompt of `length` tokens: the next multiple of `multiple` above it.

    Why: a row's floats must not depend on its batch-mates. Left padding changes them — a padded
    batch takes the masked attention kernel and every row sees extra (masked) keys, which moves
    the last bits of its activations — and int8 activation quantization turns such last-bit
    changes into whole quantization steps, enough to flip a beam or a sampled token (measured on
    the shipped model: 2 of 12 words changed between alone and batched). Padding every prompt to a
    width that depends only on its own length, always with at least one pad (so the masked path is
    taken even alone), makes a row's arithmetic the same alone or in any batch of its width.
    """
    return (length // multiple + 1) * multiple


@dataclass
class _State:
    """What a decoding step needs besides the ids: cache, mask (None = no padding), positions."""

    cache: Any
    mask: torch.Tensor | None
    positions: torch.Tensor  # [rows, 1]: the last position fed
    plain: bool = False  # every cache layer a `DynamicLayer` (the written-out GPT-2 step may run)

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
        core brings. Measured on 2 cores with int8 weights (`python -m bench.threads`,
        docs/BENCHMARKS.md §8): one thread is faster up to ~30 rows for the 125M model and up to
        at least 80 rows for our 19M one; two threads win beyond. The thread count must not
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
        self._eos = torch.tensor(self.eos_ids, dtype=torch.long, device=self.device)
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

    def _prefill(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, _State]:
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
            logits_to_keep=1,
        )
        plain = all(type(layer) is DynamicLayer for layer in getattr(cache, "layers", [None]))
        state = _State(cache=cache, mask=attention, positions=positions[:, -1:], plain=plain)
        return out.logits[:, -1, :].float(), state

    def _step(self, tokens: torch.Tensor, state: _State) -> torch.Tensor:
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
        """One token per row through a GPT-2, written out: the same modules and the same
        operations in the same order as transformers' forward (sdpa attention), so the same
        floats (tests/test_fast_gpt.py compares them bit for bit), without its per-call
        bookkeeping — mask building, cache and output classes, hooks, ~40 Python calls per layer.
        That bookkeeping was ~2–3 ms of a ~15 ms one-row step of the 125M int8 model."""
        transformer = self.model.transformer
        hidden = transformer.wte(tokens[:, None]) + transformer.wpe(state.positions)
        mask = None if state.mask is None else state.mask.bool()[:, None, None, :]
        for block, layer in zip(transformer.h, state.cache.layers, strict=True):
            attn = block.attn
            query, key, value = attn.c_attn(block.ln_1(hidden)).split(attn.split_size, dim=2)
            shape = (*query.shape[:-1], -1, attn.head_dim)
            layer.keys = torch.cat([layer.keys, key.view(shape).transpose(1, 2)], dim=-2)
            layer.values = torch.cat([layer.values, value.view(shape).transpose(1, 2)], dim=-2)
            out = self._attention(query.view(shape).transpose(1, 2), layer, mask, attn.scaling)
            out = out.transpose(1, 2).contiguous()
            out = out.reshape(*out.shape[:-2], -1).contiguous()
            hidden = attn.c_proj(out) + hidden
            mlp = block.mlp  # its dropout is the identity in eval mode (`is_plain_gpt2`)
            hidden = hidden + mlp.c_proj(mlp.act(mlp.c_fc(block.ln_2(hidden))))
        return self.model.lm_head(transformer.ln_f(hidden))[:, -1, :].float()

    def _attention(
        self, query: torch.Tensor, layer: Any, mask: torch.Tensor | None, scale: float
    ) -> torch.Tensor:
        """sdpa, always on one thread. Why: with two threads the CPU kernel splits a row's work
        differently depending on how many rows share the call, so a row's attention output moves
        in its last bits between alone and batched (measured: 103 of 120 rows), and the next int8
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

    # -- sampling / greedy -----------------------------------------------------------------------

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
        `pick` defaults to greedy.

        Unless `exact`, finished rows leave the batch; `on_prune(kept)` is then called with the
        indices (into the rows still running before the cut) that stay, so that a picker holding
        per-row state (generators) can follow (`SeededSampler.keep`).
        `first_ban`: a boolean mask over the vocabulary of tokens the first new token may not be.
        `width`: left-pad the prompts to at least this width (`pad_width`).
        """
        if not rows:
            return []
        pick = pick or greedy_pick
        ids, mask = left_pad(rows, self.pad_id, self.device, width)
        count = ids.shape[0]
        budgets = _budgets(max_new_tokens, count)
        budget = torch.tensor(budgets, device=self.device)
        logits, state = self._prefill(ids, mask)
        alive = torch.arange(count, device=self.device)  # original index of each running row
        unfinished = torch.ones(count, dtype=torch.bool, device=self.device)
        seqs = ids
        generated: list[torch.Tensor] = []  # per step: [count] tokens (pad once finished)
        for step in range(max(budgets)):
            scores = ban_repeated_ngrams(seqs, logits, no_repeat_ngram_size, self.ngram_free)
            if step == 0 and first_ban is not None:
                scores = scores.masked_fill(first_ban, float("-inf"))
            chosen = pick(seqs, scores)
            chosen = torch.where(unfinished, chosen, torch.full_like(chosen, self.pad_id))
            full = torch.full((count,), self.pad_id, dtype=torch.long, device=self.device)
            full[alive] = chosen
            generated.append(full)
            seqs = torch.cat([seqs, chosen[:, None]], 1)
            unfinished = unfinished & ~torch.isin(chosen, self._eos) & (budget > step + 1)
            if not bool(unfinished.any()):
                break
            if not exact and not bool(unfinished.all()):
                keep = unfinished.nonzero(as_tuple=True)[0]
                state.select(keep)
                seqs = seqs.index_select(0, keep)
                chosen = chosen.index_select(0, keep)
                alive = alive.index_select(0, keep)
                budget = budget.index_select(0, keep)
                unfinished = unfinished.index_select(0, keep)
                if on_prune is not None:
                    on_prune(keep.tolist())
            logits = self._step(chosen, state)
        table = torch.stack(generated, 1).tolist()
        return [self._cut(tokens[:limit]) for tokens, limit in zip(table, budgets, strict=True)]

    def _cut(self, tokens: list[int]) -> list[int]:
        """New tokens up to and including the first eos (later ones are padding)."""
        for position, token in enumerate(tokens):
            if token in self.eos_ids:
                return tokens[: position + 1]
        return tokens

    # -- beam search -----------------------------------------------------------------------------

    @_restores_threads
    def beam_search(
        self,
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
    ) -> list[list[list[int]]]:
        """Beam search as transformers does it; per row, the best `num_return_sequences`
        hypotheses (new tokens only, eos included when reached), best first.

        `max_new_tokens` may give each row its own budget: a row is then decoded as transformers
        would decode it alone with that budget (its beams all stop when it is spent).
        `width`: left-pad the prompts to at least this width (`pad_width`).
        """
        if not rows:
            return []
        if num_return_sequences > num_beams:
            raise ValueError("num_return_sequences cannot exceed num_beams")
        beams = num_beams
        ids, mask = left_pad(rows, self.pad_id, self.device, width)
        batch, prompt_len = ids.shape
        budgets = _budgets(max_new_tokens, batch)
        max_length = prompt_len + max(budgets)
        budget = torch.tensor(budgets, device=self.device)[:, None]  # [prompts, 1]
        keep_k = max(2, 1 + len(self.eos_ids)) * beams
        dev = self.device
        top_mask = torch.cat(
            [torch.ones(beams, dtype=torch.bool), torch.zeros(keep_k - beams, dtype=torch.bool)]
        ).to(dev)
        fill = self.pad_id

        if exact:
            logits, state = self._prefill(
                ids.repeat_interleave(beams, 0), mask.repeat_interleave(beams, 0)
            )
        else:
            # the beams of a prompt start identical: run the prompt once, then copy its cache
            logits, state = self._prefill(ids, mask)
            logits = logits.repeat_interleave(beams, 0)
            state.repeat(beams)

        running = torch.full((batch, beams, max_length), fill, dtype=torch.long, device=dev)
        running[:, :, :prompt_len] = ids[:, None, :]
        sequences = running.clone()
        lengths = torch.full((batch, beams), prompt_len, dtype=torch.long, device=dev)
        running_scores = torch.zeros((batch, beams), dtype=torch.float, device=dev)
        running_scores[:, 1:] = NEG
        beam_scores = torch.full((batch, beams), NEG, dtype=torch.float, device=dev)
        finished = torch.zeros((batch, beams), dtype=torch.bool, device=dev)
        improvable = torch.ones((batch, 1), dtype=torch.bool, device=dev)

        # Results of prompts that left the batch early, by original index.
        done: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        alive = list(range(batch))
        cur_len = prompt_len
        while True:
            n = len(alive)
            flat_running = running[:, :, :cur_len].reshape(n * beams, cur_len)
            log_probs = torch.nn.functional.log_softmax(logits, dim=-1)
            log_probs = ban_repeated_ngrams(
                flat_running, log_probs, no_repeat_ngram_size, self.ngram_free
            )
            if cur_len == prompt_len and first_ban is not None:
                log_probs = log_probs.masked_fill(first_ban, float("-inf"))
            vocab = log_probs.shape[-1]
            log_probs = log_probs.view(n, beams, vocab) + running_scores[:, :, None]
            log_probs = log_probs.reshape(n, beams * vocab)

            topk_scores, topk_index = torch.topk(log_probs, k=keep_k)
            source = topk_index // vocab
            tokens = topk_index % vocab
            topk_seqs = torch.take_along_dim(running, source[:, :, None], dim=1)
            topk_seqs[:, :, cur_len] = tokens
            hits = torch.isin(tokens, self._eos) | (cur_len + 1 - prompt_len >= budget)

            # the best unfinished continuations run on
            run_scores = topk_scores + hits.to(torch.float32) * NEG
            next_index = torch.topk(run_scores, k=beams)[1]
            running = torch.take_along_dim(topk_seqs, next_index[:, :, None], dim=1)
            running_scores = torch.take_along_dim(run_scores, next_index, dim=1)
            running_source = torch.take_along_dim(source, next_index, dim=1)

            # finished continuations among the top `beams` compete for the result slots
            just_finished = hits & top_mask[None, :]
            final = topk_scores / ((cur_len + 1 - prompt_len) ** length_penalty)
            full_ = torch.all(finished, dim=-1, keepdim=True) & (early_stopping is True)
            final = final + full_.to(torch.float32) * NEG
            final = final + (~improvable).to(torch.float32) * NEG
            final = final + (~just_finished) * NEG
            merged_seqs = torch.cat([sequences, topk_seqs], 1)
            merged_scores = torch.cat([beam_scores, final], 1)
            merged_lengths = torch.cat([lengths, torch.full_like(tokens, cur_len + 1)], 1)
            merged_finished = torch.cat([finished, just_finished], 1)
            best = torch.topk(merged_scores, k=beams)[1]
            sequences = torch.take_along_dim(merged_seqs, best[:, :, None], dim=1)
            beam_scores = torch.take_along_dim(merged_scores, best, dim=1)
            lengths = torch.take_along_dim(merged_lengths, best, dim=1)
            finished = torch.take_along_dim(merged_finished, best, dim=1)

            cur_len += 1
            improvable = self._improvable(
                improvable, running_scores, beam_scores, finished, cur_len, budget,
                prompt_len, early_stopping, length_penalty,
            )  # fmt: skip
            go_on = (
                bool(improvable.any())
                and not (bool(finished.all()) and early_stopping is True)
                and not bool(hits.all())
            )
            if not go_on:
                break
            # transformers reorders the cache by the chosen beams' sources
            offsets = torch.arange(n, device=dev)[:, None] * beams
            state.select((running_source + offsets).view(-1))
            if not exact:
                # a prompt is done when nothing can enter its result slots any more
                open_ = improvable.view(-1) & ~(finished.all(-1) & (early_stopping is True))
                if not bool(open_.all()):
                    keep = open_.nonzero(as_tuple=True)[0]
                    for position in (~open_).nonzero(as_tuple=True)[0].tolist():
                        done[alive[position]] = (sequences[position], lengths[position])
                    alive = [alive[i] for i in keep.tolist()]
                    rows_keep = (keep[:, None] * beams + torch.arange(beams, device=dev)).view(-1)
                    state.select(rows_keep)
                    running, running_scores = running[keep], running_scores[keep]
                    sequences, beam_scores = sequences[keep], beam_scores[keep]
                    lengths, finished, improvable = lengths[keep], finished[keep], improvable[keep]
                    budget = budget[keep]
            logits = self._step(running[:, :, cur_len - 1].reshape(-1), state)

        for position, original in enumerate(alive):
            done[original] = (sequences[position], lengths[position])
        results: list[list[list[int]]] = []
        for original in range(batch):
            seqs, lens = done[original]
            rows_out = []
            for rank in range(num_return_sequences):
                length = int(lens[rank])
                rows_out.append(self._cut(seqs[rank, prompt_len:length].tolist()))
            results.append(rows_out)
        return results

    @staticmethod
    def _improvable(
        improvable: torch.Tensor,
        running_scores: torch.Tensor,
        beam_scores: torch.Tensor,
        finished: torch.Tensor,
        cur_len: int,
        budget: torch.Tensor,
        prompt_len: int,
        early_stopping: bool | str,
        length_penalty: float,
    ) -> torch.Tensor:
        """transformers' early-stop heuristic: can a running beam still beat a finished one?"""
        best_length: torch.Tensor | int
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = budget  # the longest a hypothesis may become
        else:
            best_length = cur_len - prompt_len
        best_running = running_scores[:, :1] / (best_length**length_penalty)
        worst_finished = torch.where(finished, torch.min(beam_scores, dim=1, keepdim=True)[0], NEG)
        return improvable & torch.any(best_running > worst_finished, dim=-1, keepdim=True)


__all__ = [
    "PAD_MULTIPLE",
    "FastDecoder",
    "Picker",
    "ban_repeated_ngrams",
    "greedy_pick",
    "left_pad",
    "pad_width",
]
