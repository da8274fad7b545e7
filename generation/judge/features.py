"""What the judge reads from a joke: character n-grams, and optionally our GPT's view of it.

Text features: lower-cased character n-grams of every word padded with spaces (as sklearn's
"char_wb"), plus whole words. They catch topics, dialogue form, punctuation and word endings
without a tokenizer, and cost a dictionary lookup per n-gram at serving time. Training fits them
with sklearn's `TfidfVectorizer(analyzer=TextAnalyzer(...), sublinear_tf=True)`; serving repeats
the same arithmetic in numpy (`tfidf_rows`) over the saved vocabulary and idf, so no pickle and
no sklearn are needed in the bot.

GPT features: the mean of the last hidden state over the joke's tokens, and bits per character
(the fluency tie-breaker the service wants anyway), both from one forward pass over
`<|endoftext|> joke <|endoftext|>` exactly as `generation.gpt.scoring.encode_jokes` builds it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from generation.gpt.scoring import context_length, encode_jokes, padded_batches

_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class TextAnalyzer:
    """The n-grams of one text; a callable so sklearn and the bot share the very same code."""

    n_min: int = 2
    n_max: int = 4
    words: bool = True

    def __call__(self, text: str) -> list[str]:
        text = _SPACE_RE.sub(" ", text.lower().replace("ё", "е"))
        grams: list[str] = []
        for token in text.split():
            padded = f" {token} "
            for n in range(self.n_min, self.n_max + 1):
                if n > len(padded):
                    break
                grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
        if self.words:
            grams.extend("w:" + w for w in _WORD_RE.findall(text))
        return grams


def tfidf_rows(
    texts: Sequence[str], analyzer: TextAnalyzer, vocab: dict[str, int], idf: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(columns, values) per text: sublinear tf x idf, L2-normalised, as sklearn computes it."""
    rows = []
    for text in texts:
        counts = Counter(g for g in analyzer(text) if g in vocab)
        cols = np.fromiter((vocab[g] for g in counts), dtype=np.int64, count=len(counts))
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), np.float64, len(counts))
        values = tf * idf[cols]
        norm = float(np.sqrt(values @ values))
        rows.append((cols, values / norm if norm > 0 else values))
    return rows


# ---------------------------------------------------------------------------------------------
# GPT
# ---------------------------------------------------------------------------------------------

#: parameters that keep their float values whatever `generation.gpt.quantize` mode the GPT is
#: served in (embeddings, layer norms): a fingerprint of them names the trained weights, not
#: the kernel they run on
_STABLE_PARAMS = ("wte", "wpe", "ln_")


def gpt_fingerprint(gpt: Any) -> str:
    """A short hash of the GPT's weights and vocabulary, equal for its int8 and float forms."""
    digest = hashlib.blake2b(digest_size=8)
    model = gpt.model
    config = model.config
    head = f"{config.n_layer}x{config.n_embd}:{config.vocab_size}:{len(gpt.tokenizer)}"
    digest.update(head.encode())
    for name, param in sorted(model.named_parameters()):
        if any(part in name for part in _STABLE_PARAMS):
            digest.update(name.encode())
            as_bf16 = param.detach().to("cpu", torch.bfloat16).contiguous()
            digest.update(as_bf16.view(torch.int16).numpy().tobytes())
    return digest.hexdigest()


def gpt_pass(
    gpt: Any, texts: Sequence[str], *, pooled: bool = True, batch_size: int = 16
) -> tuple[np.ndarray | None, np.ndarray]:
    """(mean last hidden state [n, d] or None, bits per character [n]) from one forward pass.

    Bits per character counts the joke's tokens and its closing end-of-text over characters + 1
    (`generation.gpt.scoring.bits_per_char`). A joke longer than the context keeps its start and
    its closing end-of-text. The batches are `generation.gpt.scoring.padded_batches`'.
    """
    model = gpt.model
    pad = int(gpt.pad_id) if getattr(gpt, "pad_id", None) is not None else 0
    n_pos = context_length(model)
    seqs = [
        s[: n_pos - 1] + s[-1:] if len(s) > n_pos else s
        for s in encode_jokes(gpt.tokenizer, list(texts))
    ]
    bits = np.zeros(len(seqs))
    hidden = np.zeros((len(seqs), int(model.config.n_embd)), dtype=np.float32) if pooled else None
    device = next(model.parameters()).device
    with torch.inference_mode():
        for rows, ids, mask in padded_batches(seqs, batch_size, pad, device):
            states = model.transformer(input_ids=ids, attention_mask=mask.long()).last_hidden_state
            logp = torch.log_softmax(model.lm_head(states[:, :-1]).float(), dim=-1)
            target = logp.gather(-1, ids[:, 1:, None]).squeeze(-1) * mask[:, 1:]
            total = (-target.sum(1) / math.log(2)).cpu().numpy()
            if hidden is not None:
                # the joke's own tokens: skip the opening end-of-text, keep the closing one
                inner = mask.clone()
                inner[:, 0] = False
                summed = (states.float() * inner[..., None]).sum(1)
                means = (summed / inner.sum(1, keepdim=True).clamp_min(1)).cpu()
            for r, i in enumerate(rows):
                bits[i] = float(total[r])
                if hidden is not None:
                    hidden[i] = means[r].numpy()
    chars = np.asarray([len(t) + 1 for t in texts], dtype=np.float64)
    return hidden, bits / chars


def gpt_bpc(gpt: Any, texts: Sequence[str], *, reuse_search: bool = True) -> np.ndarray:
    """Bits per character of each text, as `gpt_pass` defines them.

    With `reuse_search`, a text that the GPT's last beam search wrote (or the start of one,
    as the post-processor cuts it) is not run through the model again: the search computed
    each of its tokens' log-probabilities already (`GptBackend.search_bits`,
    `generation.gpt.written`); they agree with the pass's up to float rounding and int8 steps.
    The other texts go through `gpt_pass`.
    """
    known = getattr(gpt, "search_bits", None) if reuse_search else None
    bits = known(texts) if known is not None else [None] * len(texts)
    missing = [i for i, b in enumerate(bits) if b is None]
    pairs = zip(texts, bits, strict=True)
    out = np.asarray([0.0 if b is None else b / (len(t) + 1) for t, b in pairs], dtype=np.float64)
    if missing:
        _, passed = gpt_pass(gpt, [texts[i] for i in missing], pooled=False)
        out[missing] = passed
    return out


def dense_features(texts: Sequence[str], hidden: np.ndarray | None, bpc: np.ndarray) -> np.ndarray:
    """[pooled hidden state..., bits per char, log characters] per text."""
    length = np.log1p([len(t) for t in texts])[:, None]
    parts = ([hidden] if hidden is not None else []) + [bpc[:, None], length]
    return np.hstack(parts).astype(np.float64)
