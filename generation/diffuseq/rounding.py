"""Constrained rounding: the token choice made from x0-hat at every sampler step.

Plain argmax rounding lets the model write what byte-level BPE can spell but no reader can: a
word piece glued onto a comma or onto the starting word («Армияия», «что,ка»), a byte fragment
that decodes to U+FFFD, the same word twice in a row, or a joke that stops without a sentence end.
Each of these is a token-level pattern, so it can be forbidden where the token is chosen, at every
step, and the denoiser then rewrites the neighbourhood around the constrained choice on the next
step. Nothing here looks beyond one or two neighbouring tokens or knows Russian words.

Every rule acts on one row's logits and tokens only, so a seeded row comes out the same whether it
is sampled alone or in a batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

_END = re.compile(r'^[.!?…]+["»)]*$')
_HYPHEN_OR_OPEN = tuple('-"«(')
NEG = float("-inf")


def _token_strings(tokenizer: Any, vocab: int) -> list[str]:
    tokens = tokenizer.convert_ids_to_tokens(list(range(vocab)))
    return [tokenizer.convert_tokens_to_string([t]) if t is not None else "" for t in tokens]


class TokenClasses:
    """Per-token facts the rules need, computed once from the tokenizer's vocabulary."""

    def __init__(self, tokenizer: Any, vocab: int, special: Sequence[int]) -> None:
        text = _token_strings(tokenizer, vocab)
        self.banned = torch.tensor(["\ufffd" in s for s in text])
        self.banned[list(special)] = True
        # A continuation piece starts with a letter and no space: it extends the previous word.
        self.cont = torch.tensor([bool(s) and s[0].isalpha() for s in text])
        # After these a continuation still makes a word (a letter, a hyphen, an opening quote).
        self.glue_ok = torch.tensor(
            [bool(s) and (s[-1].isalnum() or s.endswith(_HYPHEN_OR_OPEN)) for s in text]
        )
        keys: dict[str, int] = {}
        word_key = []
        for s in text:
            bare = s.strip().casefold()
            word_key.append(keys.setdefault(bare, len(keys)) if bare.isalpha() else -1)
        # Whole-word tokens that spell the same word (" Я" and " я") share a key; others get -1.
        self.word_key = torch.tensor(word_key)
        self.is_end = torch.tensor([bool(_END.match(s.strip())) and bool(s.strip()) for s in text])
        self.end_ids = self.is_end.nonzero()[:, 0]
        self._punctuation_classes(text)
        self.ban_bias = torch.zeros(len(text)).masked_fill(self.banned, NEG)
        self.dash = int(tokenizer.convert_tokens_to_ids("-"))

    def _punctuation_classes(self, text: list[str]) -> None:
        # Pure punctuation pieces (",", "?", "\n", "-", ' "'); two in a row are nearly always
        # salad («,.», «?-», «-\n») except a turn break (".\n-") or an opening quote or dash.
        self.punct = torch.tensor([bool(s) and not any(ch.isalnum() for ch in s) for s in text])
        self.newline = torch.tensor([s == "\n" for s in text])
        self.turn_dash = torch.tensor([s == "-" for s in text])
        self.spaced = torch.tensor([s.startswith(" ") and not s.isspace() for s in text])
        self.spaced_word = self.spaced & torch.tensor([s[1:2].isalnum() for s in text])
        self.line_end = torch.tensor([bool(s.strip()) and s.strip()[-1] in '.!?…:"»' for s in text])

    def punct_bad(self, prev: Tensor, cand: Tensor) -> Tensor:
        """True where `cand` may not follow `prev` (shapes broadcast)."""
        p = prev[..., None]
        pair = self.punct[p] & self.punct[cand]
        allowed = (self.newline[p] & self.turn_dash[cand]) | (self.newline[cand] & self.line_end[p])
        allowed |= self.spaced[cand] & ~self.newline[p] & ~self.turn_dash[p]
        return (pair & ~allowed) | (self.newline[cand] & ~self.line_end[p])


def prompt_prefixes(tokenizer: Any, prompt: str) -> tuple[list[int], list[int]]:
    """The two ways a training joke begins with its starting word: a dialogue turn `- Word`
    (most of the corpus) or narration `Word`."""
    p = prompt.strip()
    plain = tokenizer(p, add_special_tokens=False)["input_ids"]
    spoken = tokenizer(" " + p, add_special_tokens=False)["input_ids"]
    return [int(tokenizer.convert_tokens_to_ids("-")), *spoken], list(plain)


class Rounder:
    """Stateful rounding for one `Diffusion.sample` call.

    The joke's opening (`- Word` or `Word`) is chosen per row from the first step's x0-hat and then
    held fixed, like the source: the model still decides dialogue or narration, but can no longer
    echo the word into a non-word or drop it.
    """

    def __init__(
        self,
        classes: TokenClasses,
        prefixes: Sequence[tuple[list[int], list[int]]],
        src_lens: Sequence[int],
        stop_ids: Sequence[int],
        k: int = 8,
    ) -> None:
        self.c = classes
        self.prefixes = prefixes
        self.src_lens = [int(s) for s in src_lens]
        self.stop_ids = torch.tensor(sorted(stop_ids))
        self.k = k
        self.forced: Tensor | None = None  # (B, L) token ids, -1 where free
        self.after_prefix = torch.zeros(len(src_lens), 1, dtype=torch.bool)

    def _choose_prefix(self, logits: Tensor) -> Tensor:
        b, length = logits.shape[:2]
        forced = torch.full((b, length), -1, dtype=torch.long)
        self.after_prefix = torch.zeros(b, length, dtype=torch.bool)
        for i, ((spoken, plain), s) in enumerate(zip(self.prefixes, self.src_lens, strict=True)):
            first = logits[i, s]
            pre = spoken if first[self.c.dash] >= first[plain[0]] else plain
            pre = pre[: max(0, length - s - 1)]
            forced[i, s : s + len(pre)] = torch.tensor(pre, dtype=torch.long)
            if s + len(pre) < length:
                self.after_prefix[i, s + len(pre)] = True
        return forced

    def __call__(self, logits: Tensor, ids: Tensor, src_mask: Tensor) -> Tensor:
        """Token ids (B, L) from tied-head logits; source positions are returned as `ids`."""
        logits = logits.float().cpu()
        ids, src_mask = ids.cpu(), src_mask.cpu()
        if self.forced is None:
            self.forced = self._choose_prefix(logits)
        cand = (logits + self.c.ban_bias).topk(self.k, dim=-1).indices  # (B, L, k)
        free = ~src_mask & (self.forced < 0)
        tok = torch.where(src_mask, ids, cand[..., 0])
        tok = torch.where(self.forced >= 0, self.forced, tok)
        tok = self._neighbour_rules(cand, tok, free)
        return self._end_sentence(logits, tok, free)

    def _neighbour_rules(self, cand: Tensor, tok: Tensor, free: Tensor) -> Tensor:
        """No glued piece after punctuation, no token or whole word twice in a row: each position
        takes its best of the top k that breaks no rule against the previous token."""
        c = self.c
        prev = torch.cat([tok[:, :1], tok[:, :-1]], dim=1)
        prev2 = torch.cat([tok[:, :2], tok[:, :-2]], dim=1)
        # The first piece after the starting word must begin a new word.
        no_glue = (~c.glue_ok[prev] | self.after_prefix)[..., None]
        bad = c.cont[cand] & no_glue
        bad |= cand == prev[..., None]
        pk = c.word_key[prev][..., None]
        bad |= (pk >= 0) & (c.word_key[cand] == pk)
        bad |= c.punct_bad(prev, cand)
        # A new line is a new turn: "\n- " and a spaced word after the turn's dash.
        bad |= (c.newline[prev][..., None] & ~c.turn_dash[cand]) | (
            (c.turn_dash[prev] & c.newline[prev2])[..., None] & ~c.spaced_word[cand]
        )
        # End and pad tokens are always allowed, and nothing after them is constrained.
        stop = torch.isin(cand, self.stop_ids)
        ok = ~bad | stop | torch.isin(prev, self.stop_ids)[..., None]
        first_ok = ok.float().argmax(-1, keepdim=True)  # 0 when none is ok: keep the best
        pick = cand.gather(-1, first_ok)[..., 0]
        return torch.where(free, pick, tok)

    def _end_sentence(self, logits: Tensor, tok: Tensor, free: Tensor) -> Tensor:
        """The token before the first end/pad token must end a sentence: when it does not, the
        best sentence end replaces it, so the joke keeps the length the model chose and the next
        step's denoiser rewrites the words before the new end."""
        c = self.c
        stop = torch.isin(tok, self.stop_ids) & free
        out = tok.clone()
        for i in range(tok.shape[0]):
            hits = stop[i].nonzero()
            if not len(hits):
                continue
            e = int(hits[0])
            if e < 1 or not bool(free[i, e - 1]) or bool(c.is_end[tok[i, e - 1]]):
                continue
            out[i, e - 1] = c.end_ids[logits[i, e - 1, c.end_ids].argmax()]
        return out
