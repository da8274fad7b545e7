"""The GPT being trained: building or loading it, its loss, validation, samples and saving.

Validation reports loss per token and bits per character (the total NLL of all predicted tokens,
final ``<|endoftext|>`` included, divided by the characters of the jokes), which is comparable
across tokenizers.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel

from generation.training.gpt_data import TokenizedSplit, lm_batch

SAMPLE_PROMPTS = ("", "Штирлиц", "- Доктор,", "Вовочка")
DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}
# Makes a fresh autocast region (or a no-op one) for each forward pass.
Autocast = Callable[[], contextlib.AbstractContextManager[Any]]


def build_model(args: argparse.Namespace, tokenizer: Any) -> GPT2LMHeadModel:
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=args.n_positions,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        resid_pdrop=args.dropout,
        embd_pdrop=args.dropout,
        attn_pdrop=args.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return GPT2LMHeadModel(config)


def load_model(
    args: argparse.Namespace, tokenizer: Any, state: dict[str, Any] | None
) -> GPT2LMHeadModel:
    """The model to train: from a resumed state, from ``--init-from`` or a new one."""
    if state is not None:
        model = GPT2LMHeadModel(GPT2Config.from_dict(state["config"]))
        model.load_state_dict(state["model"])
        return model
    if args.init_from is not None:
        drop = args.dropout
        return GPT2LMHeadModel.from_pretrained(
            str(args.init_from),
            dtype=torch.float32,  # bf16 weights on disk; train and keep the master copy in fp32
            resid_pdrop=drop,
            embd_pdrop=drop,
            attn_pdrop=drop,
        )
    return build_model(args, tokenizer)


def weights_mb(model: torch.nn.Module, dtype: torch.dtype) -> float:
    """Size of the saved weights: unique parameters (tied ones once) times the element size."""
    seen: set[int] = set()
    n = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            n += p.numel()
    for b in model.buffers():
        n += b.numel()
    return n * torch.tensor([], dtype=dtype).element_size() / 1e6


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make_optimizer(
    model: torch.nn.Module, args: argparse.Namespace, device: torch.device
) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only; fused on CUDA."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kwargs: dict[str, Any] = {"lr": args.lr, "betas": (0.9, 0.95), "eps": 1e-8}
    if device.type == "cuda":
        kwargs["fused"] = True
    return torch.optim.AdamW(groups, **kwargs)


def lm_loss(
    model: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    logits = model(input_ids=x).logits
    return F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        labels[:, 1:].reshape(-1),
        ignore_index=-100,
        reduction=reduction,
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    split: TokenizedSplit,
    pad_id: int,
    batch_size: int,
    autocast: Autocast,
) -> dict[str, float]:
    """Validation loss per token and bits per character."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    order = np.argsort(split.lengths, kind="stable")
    for i in range(0, len(order), batch_size):
        x, labels = lm_batch(split, order[i : i + batch_size], pad_id)
        with autocast():
            total += float(lm_loss(model, x, labels, reduction="sum"))
        count += int((labels[:, 1:] != -100).sum())
    model.train(was_training)
    loss = total / max(1, count)
    return {"loss": loss, "bpc": total / math.log(2) / max(1, split.chars), "tokens": count}


@torch.no_grad()
def sample(
    model: GPT2LMHeadModel,
    tokenizer: Any,
    prompts: tuple[str, ...] = SAMPLE_PROMPTS,
    max_new_tokens: int = 48,
    seed: int = 0,
) -> list[str]:
    """A few sampled jokes, one per prompt, for eyeballing progress."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: list[str] = []
    for prompt in prompts:
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        ids = [tokenizer.bos_token_id, *tokenizer.encode(prompt, add_special_tokens=False)]
        x = torch.tensor([ids], device=device)
        y = model.generate(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            do_sample=True,
            top_p=0.95,
            temperature=0.8,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        out.append(tokenizer.decode(y[0], skip_special_tokens=True))
    model.train(was_training)
    return out


def generation_config(tokenizer: Any, max_new_tokens: int = 48) -> GenerationConfig:
    return GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=True,
        temperature=0.8,
        top_p=0.95,
        max_new_tokens=max_new_tokens,
    )


def save_checkpoint(
    model: GPT2LMHeadModel,
    tokenizer: Any,
    out: Path,
    dtype: torch.dtype,
    summary: dict[str, Any],
) -> None:
    """Save a loadable model folder: weights in ``dtype``, tokenizer, generation config."""
    out.mkdir(parents=True, exist_ok=True)
    clone = copy.deepcopy(model).to(device="cpu", dtype=dtype)  # deepcopy keeps the weight tying
    clone.generation_config = generation_config(tokenizer)
    clone.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    (out / "train_summary.json").write_text(
        json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
