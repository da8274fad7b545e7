"""Shared pieces of the DiffuSeq tests: a tiny tokenizer (the `tok_dir` fixture's, in
`tests/fixtures_models.py`) and model config, batches, and a fake denoiser that records what the
samplers feed it."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from generation.diffuseq.config import DiffuSeqConfig
from generation.diffuseq.model import DiffuSeqModel
from generation.training.diffuseq_data import (
    build_tensors,
    ensure_special_tokens,
    make_batch,
    tokenize_pairs,
)

JOKES = [
    "Штирлиц шёл по лесу и увидел ёлку.",
    "Доктор, у меня болит голова. — Пейте чай.",
    "Жена спросила мужа, где молоко.",
    "Молоко убежало, а кот остался.",
    "— Вовочка, почему опоздал? — Будильник устал.",
    "Программист лёг спать и забыл сохранить сон.",
]


def write_tokenizer(d: Path) -> Path:
    """A tiny byte-level BPE of the same kind as the project's, loadable by AutoTokenizer."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(JOKES * 20, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    fast.save_pretrained(str(d))
    return d


def tiny_config(tokenizer, seq_len: int = 24, **kw) -> DiffuSeqConfig:
    roles = ensure_special_tokens(tokenizer)
    base = dict(
        vocab_size=len(tokenizer),
        seq_len=seq_len,
        emb_dim=16,
        hidden=64,
        layers=2,
        heads=2,
        ffn=128,
        time_dim=32,
        dropout=0.0,
    )
    base.update(kw)
    return DiffuSeqConfig(**roles, **base)


def tiny_batch(tokenizer, cfg: DiffuSeqConfig, texts=JOKES):
    pairs = tokenize_pairs(tokenizer, texts, cfg.max_src_len)
    ids, src, tgt = build_tensors(pairs, cfg.seq_len, cfg.sep_id, cfg.pad_id, cfg.eos_id)
    return make_batch(ids, src, tgt, cfg.pad_weight), src


class ConstantDenoiser(torch.nn.Module):
    """Wraps a model so that x0-hat is always the embedding of fixed ids; records every call."""

    def __init__(self, model: DiffuSeqModel, ids: torch.Tensor) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config
        self.embed = model.embed
        self.mean_embed = model.mean_embed
        self.ids = ids
        self.calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls.append((z.clone(), t.clone()))
        return self.inner.embed(self.ids)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.logits(x)


def seeded_model_and_batch(tok_dir: Path, batch_rows: int = 1):
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = tiny_config(tokenizer, emb_dim=32)
    torch.manual_seed(0)
    model = DiffuSeqModel(cfg).eval()
    batch, _ = tiny_batch(tokenizer, cfg, JOKES[:batch_rows])
    return model, cfg, batch
