"""The judge at serving time: saved weights in, "how likely people like it" out.

A logistic model over sparse text features (`features.TextAnalyzer` + tf-idf) and, when it was
trained with them, dense GPT features (mean hidden state, bits per char, length). The folder holds
`judge.json` (settings, vocabulary, the GPT fingerprint) and `weights.safetensors` (idf and
coefficients): plain data, loaded without pickle or sklearn.

The version is a hash of both files, and `judge.json` carries the GPT fingerprint when the judge
reads the GPT, so any change of what the judge computes changes the version. A judge that reads
the GPT refuses a different GPT (its hidden states would mean something else); a text-only judge
does not care which GPT it serves next to: only the tie-breaking bits per character come from it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from generation.judge.features import (
    TextAnalyzer,
    dense_features,
    gpt_bpc,
    gpt_fingerprint,
    gpt_pass,
    tfidf_rows,
)

log = logging.getLogger(__name__)

CONFIG_FILE = "judge.json"
WEIGHTS_FILE = "weights.safetensors"
FILES = (CONFIG_FILE, WEIGHTS_FILE)
FORMAT = 1


class JudgeUnavailable(RuntimeError):
    """The judge cannot be used; the message says the one reason why."""


@dataclass(frozen=True)
class JudgeScore:
    liked: float  # estimated probability that people like the joke, 0..1
    bpc: float | None  # the GPT's bits per character (lower = more fluent); None without a GPT


def folder_version(folder: Path) -> str:
    digest = hashlib.blake2b(digest_size=3)
    for name in FILES:
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    return f"judge@{digest.hexdigest()}"


class Judge:
    def __init__(
        self,
        config: dict[str, Any],
        weights: dict[str, np.ndarray],
        *,
        gpt: Any = None,
        version: str = "judge@unsaved",
    ) -> None:
        self.config = config
        self.gpt = gpt
        self.version = version
        self.analyzer = TextAnalyzer(**config["analyzer"])
        self.vocab = {gram: i for i, gram in enumerate(config["vocabulary"])}
        # float32 is what is saved: rounding here makes a fresh judge score as its reloaded copy
        stored = {k: np.asarray(v, np.float32).astype(np.float64) for k, v in weights.items()}
        self.idf, self.coef_text = stored["idf"], stored["coef_text"]
        self.uses_gpt = bool(config["uses_gpt"])
        self.gpt_hidden = bool(config.get("gpt_hidden", True))
        self.coef_dense = stored.get("coef_dense", np.zeros(0))
        self.dense_mean = stored.get("dense_mean", np.zeros(0))
        self.dense_scale = stored.get("dense_scale", np.ones(0))
        self.intercept = float(config["intercept"])
        # bits per char of texts the GPT's last beam search wrote are read from the search
        # (`features.gpt_bpc`); False: always the forward pass
        self.reuse_search = True

    # -- loading / saving --------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: str | Path, gpt: Any = None) -> Judge:
        """Load a saved judge; `gpt` is the served `GptBackend` (needed for bits per char and by
        a judge trained on GPT features). Raises `JudgeUnavailable` with one clear reason."""
        folder = Path(folder)
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise JudgeUnavailable(f"judge folder {folder} lacks {', '.join(missing)}")
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
            weights = load_file(str(folder / WEIGHTS_FILE))
            _check(config, weights)
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
            raise JudgeUnavailable(f"judge in {folder} is unreadable: {error}") from error
        if config["uses_gpt"]:
            if gpt is None:
                raise JudgeUnavailable(f"judge in {folder} reads the GPT, but no GPT was given")
            found, wanted = gpt_fingerprint(gpt), config["gpt_fingerprint"]
            if found != wanted:
                raise JudgeUnavailable(
                    f"judge in {folder} was trained with GPT {wanted}, the loaded GPT is {found}"
                )
        return cls(config, weights, gpt=gpt, version=folder_version(folder))

    def save(self, folder: str | Path) -> str:
        """Write the two files; returns the new version."""
        from safetensors.numpy import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        weights = {"idf": self.idf, "coef_text": self.coef_text}
        if self.uses_gpt:
            weights |= {
                "coef_dense": self.coef_dense,
                "dense_mean": self.dense_mean,
                "dense_scale": self.dense_scale,
            }
        text = json.dumps(self.config, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        (folder / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")
        save_file(
            {k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()},
            str(folder / WEIGHTS_FILE),
        )
        (folder / WEIGHTS_FILE).chmod(
            0o644
        )  # safetensors writes 0600; the bot may run as another user
        self.version = folder_version(folder)
        return self.version

    # -- scoring ---------------------------------------------------------------------------------

    def logits(
        self, texts: Sequence[str], *, fluency: bool = True, bpc: Sequence[float] | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(log-odds of "liked", bits per char or None) per text; see `score`."""
        texts = list(texts)
        out = np.full(len(texts), self.intercept)
        for i, (cols, values) in enumerate(tfidf_rows(texts, self.analyzer, self.vocab, self.idf)):
            out[i] += float(values @ self.coef_text[cols])
        known = None if bpc is None else np.asarray(bpc, dtype=np.float64)
        hidden = None
        wants_pass = self.gpt_hidden if self.uses_gpt else False
        if self.gpt is not None and texts and wants_pass:
            hidden, known = gpt_pass(self.gpt, texts, pooled=True)
        elif self.gpt is not None and texts and known is None and (fluency or self.uses_gpt):
            known = gpt_bpc(self.gpt, texts, reuse_search=self.reuse_search)
        if self.uses_gpt and texts:
            if known is None:
                raise ValueError("this judge reads the GPT's bits per char: give a GPT or bpc")
            dense = dense_features(texts, hidden, known)
            out += ((dense - self.dense_mean) / self.dense_scale) @ self.coef_dense
        return out, known if fluency else None

    def score(
        self, texts: Sequence[str], *, fluency: bool = True, bpc: Sequence[float] | None = None
    ) -> list[JudgeScore]:
        """The GPT forward pass (bits per char, hidden states) is nearly all of the cost
        (metrics.json, serving_ms_16), so a caller that already has each text's bits per char
        (as `features.gpt_pass` defines it) may pass `bpc` and skip it; `fluency=False` skips it
        where the judge itself does not read the GPT. A judge that reads no hidden states takes
        the bits per char of texts the GPT just wrote by beam search from that search
        (`features.gpt_bpc`)."""
        logits, found = self.logits(texts, fluency=fluency, bpc=bpc)
        liked = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
        return [
            JudgeScore(float(p), None if found is None else _finite(found[i]))
            for i, p in enumerate(liked)
        ]

    def fluency(self, texts: Sequence[str]) -> list[float | None]:
        """The GPT's bits per character of each text (None without a GPT)."""
        if self.gpt is None or not texts:
            return [None] * len(texts)
        _, bpc = gpt_pass(self.gpt, list(texts), pooled=False)
        return [_finite(b) for b in bpc]


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _check(config: dict[str, Any], weights: dict[str, np.ndarray]) -> None:
    """Shapes and format agree; raises ValueError otherwise (a truncated or mixed folder)."""
    if config.get("format") != FORMAT:
        raise ValueError(f"format {config.get('format')!r}, expected {FORMAT}")
    size = len(config["vocabulary"])
    for name in ("idf", "coef_text"):
        if weights[name].shape != (size,):
            raise ValueError(f"{name} has shape {weights[name].shape}, vocabulary is {size}")
    if config["uses_gpt"]:
        dims = {weights[k].shape for k in ("coef_dense", "dense_mean", "dense_scale")}
        if len(dims) != 1:
            raise ValueError(f"dense weights disagree in shape: {sorted(dims)}")
        if not config.get("gpt_fingerprint"):
            raise ValueError("a GPT-reading judge without a GPT fingerprint")
