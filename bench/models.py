"""Models for benchmarks, built on the fly in a temp folder and never committed.

`build_rugpt3small_like(folder)` saves a GPT-2 with ruGPT3-small's architecture (12 layers, 768
wide, 12 heads, 2048 positions, vocabulary 50264) and random weights: decoding speed does not
depend on the weight values, so it stands in for the original `abletobetable/gpt-short-jokes`
without downloading it. The tokenizer is ours (data/prepared/tokenizer or the shipped model's),
padded with unused entries to 50264 ids so every id the random model emits decodes to something.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from settings import ROOT

RUGPT3SMALL = {
    "vocab_size": 50264,
    "n_positions": 2048,
    "n_embd": 768,
    "n_layer": 12,
    "n_head": 12,
}
TOKENIZER_CANDIDATES = (ROOT / "models" / "gpt", ROOT / "data" / "prepared" / "tokenizer")


def find_tokenizer() -> Path:
    for folder in TOKENIZER_CANDIDATES:
        if (folder / "tokenizer.json").is_file():
            return folder
    raise FileNotFoundError(f"no tokenizer.json in any of {[str(p) for p in TOKENIZER_CANDIDATES]}")


def pad_tokenizer(source: Path, target: Path, size: int) -> Path:
    """Copy a byte-level BPE tokenizer folder, adding plain vocabulary entries up to `size` ids.

    The extra entries have no merges, so encoding never produces them; decoding maps them to
    short ASCII words, which is what a random model's output needs.
    """
    target.mkdir(parents=True, exist_ok=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (source / name).is_file():
            shutil.copy2(source / name, target / name)
    data = json.loads((target / "tokenizer.json").read_text(encoding="utf-8"))
    vocab: dict[str, int] = data["model"]["vocab"]
    taken = set(vocab.values()) | {token["id"] for token in data.get("added_tokens", [])}
    for index in range(size):
        if index not in taken:
            vocab[f"unused{index}"] = index
    (target / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return target


def build_rugpt3small_like(folder: Path | str, tokenizer: Path | str | None = None) -> Path:
    """Save a random-weight GPT-2 of ruGPT3-small's shape + a padded tokenizer into `folder`."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    folder = Path(folder)
    pad_tokenizer(
        Path(tokenizer) if tokenizer else find_tokenizer(), folder, RUGPT3SMALL["vocab_size"]
    )
    tok = AutoTokenizer.from_pretrained(folder)
    if len(tok) != RUGPT3SMALL["vocab_size"]:
        raise RuntimeError(f"padded tokenizer has {len(tok)} ids, not {RUGPT3SMALL['vocab_size']}")
    torch.manual_seed(0)
    config = GPT2Config(
        **RUGPT3SMALL,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    return folder


RANDOM_LABEL = "random 125M (ruGPT3-small shape)"


def gpt_models(names: str, scratch: Path) -> list[tuple[str, Path]]:
    """(label, folder) for each comma-separated name: `random` (built into `scratch`),
    `shipped` (models/gpt) or a model folder."""
    models: list[tuple[str, Path]] = []
    for name in names.split(","):
        if name == "random":
            models.append((RANDOM_LABEL, build_rugpt3small_like(scratch / "rugpt3small-random")))
        elif name == "shipped":
            models.append(("shipped models/gpt", ROOT / "models" / "gpt"))
        elif Path(name).is_dir():
            models.append((Path(name).name, Path(name)))
        else:
            raise ValueError(f"unknown model {name!r}: random, shipped or a model folder")
    return models


def rows_per_model(
    names: str, prefix: str, measure: Callable[[str, Path], list[list[Any]]]
) -> list[list[Any]]:
    """`measure(label, folder)` for each model of `gpt_models(names)`, their table rows joined;
    a random model is built in a temp folder named after `prefix` and removed afterwards."""
    rows: list[list[Any]] = []
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        for label, folder in gpt_models(names, Path(tmp)):
            rows += measure(label, folder)
    return rows


def served_gpt(folder: Path | str) -> Any:
    """The GPT as the bot serves it (int8 weights, the fast decoder), warmed up."""
    from generation.gpt.backend import GptBackend

    backend = GptBackend.from_pretrained(folder, quantize="int8")
    backend.warmup()
    return backend


def gpt_presets_with(**overrides: Any) -> dict[str, dict[str, Any]]:
    """The served `gpt` / `gpt-sample` decoding presets with some settings changed; e.g. the
    original's token budget: `gpt_max_new_tokens=0, gpt_max_length=20`."""
    from generation.config import GenerationConfig
    from generation.registry import gpt_presets

    return gpt_presets(GenerationConfig.defaults(**overrides))


#: The original project's token budget (20 tokens in all, prompt included): same work per joke.
ORIGINAL_BUDGET = {"gpt_max_new_tokens": 0, "gpt_max_length": 20}


def build_diffuseq_like(folder: Path | str, preset: str = "gpu", seq_len: int = 64) -> Path:
    """Save a random-weight DiffuSeq of a trainer preset (default "gpu": 8 x 384) with our
    tokenizer, as `generation.training.train_diffuseq` would lay it out; speed only, outputs are
    noise."""
    import torch
    from transformers import AutoTokenizer

    from generation.diffuseq.checkpoint import save_pretrained
    from generation.diffuseq.config import PRESETS, DiffuSeqConfig
    from generation.diffuseq.model import DiffuSeqModel
    from generation.training.diffuseq_data import ensure_special_tokens

    tokenizer = AutoTokenizer.from_pretrained(find_tokenizer())
    roles = ensure_special_tokens(tokenizer)
    config = DiffuSeqConfig(vocab_size=len(tokenizer), seq_len=seq_len, **PRESETS[preset], **roles)
    torch.manual_seed(0)
    model = DiffuSeqModel(config).eval()
    return save_pretrained(model, tokenizer, folder)
