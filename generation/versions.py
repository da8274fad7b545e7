"""Model versions: a short content hash of what makes a model write what it writes.

Why: a rating is only useful for tuning if it can be joined to exactly the weights, tokenizer and
settings that wrote the joke; a folder name says nothing once the folder is retrained in place.
The hash covers the weights, the tokenizer and the model's configuration files, so `gpt@3f9a1c`
changes with any of them and with nothing else (a README edit keeps it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

#: files whose content decides what a model writes; others (README, plots, logs) do not count
CONTENT_FILES = (
    "*.safetensors",
    "*.bin",
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.json",
    "merges.txt",
)


def content_files(folder: Path, patterns: Iterable[str] = CONTENT_FILES) -> list[Path]:
    return sorted({path for pattern in patterns for path in folder.glob(pattern) if path.is_file()})


def folder_version(prefix: str, *folders: Path, patterns: Iterable[str] = CONTENT_FILES) -> str:
    """`prefix@xxxxxx`: a 6-hex-digit hash of the named files' names and bytes in `folders`."""
    digest = hashlib.blake2b(digest_size=3)
    patterns = tuple(patterns)
    for folder in folders:
        for path in content_files(folder, patterns):
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
    return f"{prefix}@{digest.hexdigest()}"


__all__ = ["CONTENT_FILES", "content_files", "folder_version"]
