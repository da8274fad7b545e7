"""Tiny real models for tests: a byte-level BPE tokenizer and a 2-layer GPT-2, built on the fly.

Everything is saved with `save_pretrained` (safetensors) and loaded back through the real
`from_pretrained` path, so tests exercise what production does, in a second or two. The GPT is
trained for a few dozen steps on the sentences below, so that it writes Cyrillic words, full stops
and an end-of-text token instead of pure noise; weights are seeded, so its outputs are stable.

Use `make_tiny_gpt(folder)` directly or the session fixtures in `tests/conftest.py`.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EOS = "<|endoftext|>"
PAD = "<pad>"

SENTENCES = [
    "Молоко убежало, а кот остался.",
    "Штирлиц шёл по лесу и думал о молоке.",
    "Кот сказал: «Молоко — это жизнь!»",
    "Программист пошёл за хлебом и не вернулся.",
    "— Доктор, я буду жить?\n— А смысл?",
    "Встречаются два друга. Один говорит: привет!",
    "Жена спрашивает мужа, где молоко. Муж молчит.",
    "Вовочка пришёл в школу без портфеля.",
    "Колобок повесился, потому что было скучно.",
    "Купил слона, а он не влез в лифт.",
    "Учитель спросил: кто разбил окно? Все молчат.",
    "Пошёл мужик в магазин и купил молоко.",
]


def make_tiny_tokenizer(path: Path | str, vocab_size: int = 420) -> Path:
    """Train a byte-level BPE on SENTENCES and save it as a PreTrainedTokenizerFast folder.

    `<|endoftext|>` is bos, eos and unk (as in GPT-2); `<pad>` is a separate pad token.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(SENTENCES, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=PAD
    )
    fast.save_pretrained(path)
    return path


def make_tiny_gpt(
    path: Path | str,
    *,
    tokenizer_path: Path | str | None = None,
    with_tokenizer: bool = True,
    prepend_bos: bool = True,
    train_steps: int = 40,
    seed: int = 0,
) -> Path:
    """Build (and briefly train) a 2-layer, 32-wide GPT-2 and save it to `path`.

    with_tokenizer: save the tokenizer into the model folder too (our own model's layout); with
    False the folder holds the model only, like the original hub model whose tokenizer lives
    elsewhere — then the tokenizer goes to `tokenizer_path` (default: `<path>-tokenizer`).
    prepend_bos: write the `prepend_bos` flag our trainer writes (sequences start with eos/bos).
    """
    from transformers import AutoTokenizer

    path = Path(path)
    if tokenizer_path is None:
        tokenizer_path = path if with_tokenizer else path.with_name(path.name + "-tokenizer")
    tokenizer_path = Path(tokenizer_path)
    make_tiny_tokenizer(tokenizer_path)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path)
    model = tiny_gpt2(tokenizer, seed=seed)
    if train_steps:
        _train(model, tokenizer, train_steps)
    model.eval()
    if prepend_bos:
        model.config.prepend_bos = True
    model.save_pretrained(path, safe_serialization=True)
    return path


def tiny_gpt2(
    tokenizer: Any, *, n_positions: int = 128, n_embd: int = 32, n_layer: int = 2, seed: int = 0
) -> Any:
    """A seeded, untrained GPT-2 (two heads) over `tokenizer`'s vocabulary, in training mode."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(config)


def _train(model, tokenizer, steps: int) -> None:  # type: ignore[no-untyped-def]
    """A few AdamW steps on `<eos> sentence <eos>`: enough to learn letters, full stops, eos."""
    import torch

    eos = tokenizer.eos_token_id
    rows = [[eos, *tokenizer.encode(text), eos] for text in SENTENCES]
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for index, row in enumerate(rows):
        ids[index, : len(row)] = torch.tensor(row)
        labels[index, : len(row)] = torch.tensor(row)
        mask[index, : len(row)] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: more threads only add contention on a shared box
    try:
        for _ in range(steps):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny matrices: a second thread only adds contention on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tok_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DiffuSeq tests' tokenizer folder (`tests.diffuseq_helpers.write_tokenizer`), made
    once: tests only read it."""
    from tests.diffuseq_helpers import write_tokenizer

    return write_tokenizer(tmp_path_factory.mktemp("tok"))


@pytest.fixture(scope="session")
def tiny_gpt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Our own layout: model + tokenizer in one folder, `prepend_bos` set."""
    return make_tiny_gpt(tmp_path_factory.mktemp("models") / "gpt")


def split_layout(source: Path | str, root: Path | str) -> tuple[Path, Path]:
    """Copy a model folder into the original hub layout: `<root>/gpt-short-jokes` holds the model
    only (no `prepend_bos` flag), `<root>/rugpt3small` the tokenizer. Returns both folders."""
    source, root = Path(source), Path(root)
    model_dir, tokenizer_dir = root / "gpt-short-jokes", root / "rugpt3small"
    model_dir.mkdir(parents=True)
    tokenizer_dir.mkdir(parents=True)
    for file in source.iterdir():
        is_tokenizer = file.name.startswith(("tokenizer", "special_tokens", "vocab", "merges"))
        shutil.copy2(file, (tokenizer_dir if is_tokenizer else model_dir) / file.name)
    config_path = model_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("prepend_bos", None)
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return model_dir, tokenizer_dir


@pytest.fixture(scope="session")
def tiny_gpt_split(
    tiny_gpt_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """The original hub layout (`abletobetable/gpt-short-jokes` + a separate rugpt3 tokenizer):
    a model folder without tokenizer or `prepend_bos` flag, and a tokenizer folder."""
    return split_layout(tiny_gpt_dir, tmp_path_factory.mktemp("hub"))
