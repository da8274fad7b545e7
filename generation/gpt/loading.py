"""Loading a GPT for `GptBackend`: the tokenizer (with clear errors), dtype names, the bos rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from generation.versions import folder_version

BOS_FLAG = "prepend_bos"
TRAIN_SUMMARY = "train_summary.json"  # written by generation.training.train_gpt next to the weights
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return _DTYPES[dtype.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {sorted(_DTYPES)}") from None


def is_local(name: str | Path) -> bool:
    text = str(name)
    return Path(text).exists() or text.startswith((".", "/", "~")) or text.count("/") > 1


def check_folders(*names: str | Path | None) -> None:
    """A local-looking model or tokenizer name that does not exist is a clear error."""
    for name in names:
        if name is not None and is_local(name) and not Path(str(name)).expanduser().exists():
            raise FileNotFoundError(f"model folder not found: {name}")


def load_tokenizer(source: str, *, named: bool) -> PreTrainedTokenizerBase:
    """The tokenizer at `source`; `named`: the caller named it apart from the model (else the
    error suggests doing so)."""
    hint = "" if named else " (name a separate one, e.g. GPT_TOKENIZER)"
    local_dir = Path(source).expanduser()
    if local_dir.is_dir() and not any((local_dir / f).exists() for f in TOKENIZER_FILES):
        # transformers 5 would quietly build an empty tokenizer from such a folder.
        raise OSError(f"no tokenizer files in {source}{hint}")
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise OSError(f"no tokenizer at {source}{hint}: {error}") from error
    if len(tok) < 2:
        raise OSError(f"the tokenizer at {source} is empty{hint}")
    return tok


def detect_prepend_bos(name: str | Path, lm: Any) -> bool:
    """Whether the model was trained on `<bos> joke <eos>` and so wants bos before the prompt.

    An explicit `prepend_bos` in the saved config or generation config decides; otherwise a
    `train_summary.json` next to the weights marks a model from our `generation.training.train_gpt`,
    which trains that way. Anything else (the original hub model) gets the bare prompt.
    """
    for source in (lm.generation_config, lm.config):
        value = getattr(source, BOS_FLAG, None)
        if value is not None:
            return bool(value)
    folder = Path(str(name)).expanduser()
    return (folder / TRAIN_SUMMARY).is_file()


def model_id_of(name: str | Path, tokenizer: str | Path | None = None) -> str:
    """`gpt@xxxxxx`, the content hash of a local model (and a separate local tokenizer); a hub
    name as given (its files are the hub's to version)."""
    if not is_local(name):
        return str(name)
    folders = [Path(str(name)).expanduser()]
    if tokenizer is not None and is_local(tokenizer):
        folders.append(Path(str(tokenizer)).expanduser())
    return folder_version("gpt", *folders)


__all__ = [
    "BOS_FLAG",
    "TOKENIZER_FILES",
    "TRAIN_SUMMARY",
    "check_folders",
    "detect_prepend_bos",
    "is_local",
    "load_tokenizer",
    "model_id_of",
    "resolve_dtype",
]
