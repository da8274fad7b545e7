"""Has a candidate joke copied a training joke? Decided from hashes, without shipping the jokes.

A candidate is a copy when it shares `SHARE` characters in a row with some training joke, after
both are normalised by `normalize` (lower case, "ё" as "е", every run of whitespace one space), so a
copy is still found when the model changed only the case, the line breaks or the "ё".

The index holds a 64-bit hash (blake2b) of the `WIDTH`-character window at every `STRIDE`-th
position of each normalised training joke, sorted and unique, in one ``.npy``. A candidate's
windows at *every* position are hashed and looked up at once (``np.searchsorted``).

Why this finds every copy: a shared run of `SHARE` characters starting at position p of a training
joke contains the stored window at the first multiple a of `STRIDE` at or after p, because
a - p <= STRIDE - 1 and so a + WIDTH <= p + SHARE. What a hit proves: that `WIDTH` characters are
shared, so a share a little shorter than `SHARE` can be called a copy too. `STRIDE` trades that
slack against the file size. Hashing short blocks at a wide stride (the first design) kept the file
smaller, but a hit then proved only a short share, and the models' stock phrases ("приходит к
врачу и говорит") are that long: it called many original jokes copies. Hashing every window would be
exact, and `STRIDE` times larger. The measured trade-off is in models/checks/README.md.

Training jokes shorter than `SHARE` characters cannot share that many, so they add nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SHARE = 40
STRIDE = 10
WIDTH = SHARE + 1 - STRIDE


def normalize(text: str) -> str:
    """The form in which texts are compared: case, "ё" and spacing do not make a joke new."""
    return " ".join(text.lower().replace("ё", "е").split())


def _hash_many(windows: Iterable[str]) -> np.ndarray:
    digests = b"".join(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest() for w in windows)
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def stored_windows(text: str) -> list[str]:
    """The windows of one training joke that the index keeps."""
    norm = normalize(text)
    if len(norm) < SHARE:
        return []
    return [norm[i : i + WIDTH] for i in range(0, len(norm) - WIDTH + 1, STRIDE)]


class CopyIndex:
    """A sorted set of window hashes of the training jokes; see the module docstring."""

    def __init__(self, hashes: np.ndarray) -> None:
        hashes = np.asarray(hashes)
        if hashes.ndim != 1 or hashes.dtype != np.uint64:
            raise ValueError(f"copy index must be a 1-D uint64 array, got {hashes.dtype}")
        if hashes.size > 1 and not bool(np.all(hashes[1:] > hashes[:-1])):
            raise ValueError("copy index must be sorted and unique")
        self.hashes = hashes

    @classmethod
    def build(cls, texts: Iterable[str]) -> CopyIndex:
        chunks = [_hash_many(stored_windows(t)) for t in texts]
        hashes = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.uint64)
        return cls(np.unique(hashes))

    @classmethod
    def load(cls, path: str | Path) -> CopyIndex:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"copy index not found: {path}")
        return cls(np.load(path, allow_pickle=False))

    def save(self, path: str | Path) -> None:
        np.save(Path(path), self.hashes, allow_pickle=False)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def shared_window(self, text: str) -> str | None:
        """A normalised stretch of the text that a training joke also has, or None."""
        norm = normalize(text)
        if len(norm) < SHARE or self.hashes.size == 0:
            return None
        windows = [norm[i : i + WIDTH] for i in range(len(norm) - WIDTH + 1)]
        query = _hash_many(windows)
        pos = np.minimum(np.searchsorted(self.hashes, query), self.hashes.size - 1)
        hits = np.flatnonzero(self.hashes[pos] == query)
        return windows[int(hits[0])] if hits.size else None

    def contains(self, windows: list[str]) -> np.ndarray:
        """Which of these `WIDTH`-character normalised windows a training joke has."""
        if not windows or self.hashes.size == 0:
            return np.zeros(len(windows), dtype=bool)
        query = _hash_many(windows)
        pos = np.minimum(np.searchsorted(self.hashes, query), self.hashes.size - 1)
        return self.hashes[pos] == query

    def is_copied(self, text: str) -> bool:
        return self.shared_window(text) is not None
