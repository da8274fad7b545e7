"""One decoding step of a GPT-2, written out over the model's own modules (`FastDecoder`).

The same modules and the same operations in the same order as transformers' forward with sdpa
attention, so the same floats (tests/test_gpt_decoding.py compares them bit for bit), without the
forward's per-call bookkeeping: mask building, cache and output classes, hooks. The modules are
looked up once per decoding run (`Gpt2Step.of`) and called through their `forward`: `nn.Module`'s
call machinery and attribute lookups cost over a hundred Python calls a step, a real share of a
step on a few rows. A model with hooks keeps the full module calls, so its hooks still run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

Attention = Callable[[torch.Tensor, Any, torch.Tensor | None, float], torch.Tensor]
Layer = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class _Block:
    ln_1: Layer
    c_attn: Layer
    split_size: int
    head_dim: int
    scaling: float
    c_proj: Layer
    ln_2: Layer
    c_fc: Layer
    act: Layer
    mlp_proj: Layer  # the MLP's dropout is the identity in eval mode (`is_plain_gpt2`)


@dataclass(frozen=True)
class Gpt2Step:
    wte: Layer
    wpe: Layer
    blocks: Sequence[_Block]
    ln_f: Layer
    lm_head: Layer

    @classmethod
    def of(cls, model: Any) -> Gpt2Step:
        """The step over `model`'s modules as they are now."""
        hooked = any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
        hooked = hooked or bool(torch.nn.modules.module._global_forward_hooks)
        hooked = hooked or bool(torch.nn.modules.module._global_forward_pre_hooks)

        def call(module: Any) -> Layer:
            return module if hooked else module.forward

        blocks = []
        for block in model.transformer.h:
            attn, mlp = block.attn, block.mlp
            parts = {
                "ln_1": call(block.ln_1), "c_attn": call(attn.c_attn),
                "split_size": attn.split_size, "head_dim": attn.head_dim,
                "scaling": attn.scaling, "c_proj": call(attn.c_proj), "ln_2": call(block.ln_2),
                "c_fc": call(mlp.c_fc), "act": call(mlp.act), "mlp_proj": call(mlp.c_proj),
            }  # fmt: skip
            blocks.append(_Block(**parts))
        transformer = model.transformer
        return cls(
            wte=call(transformer.wte),
            wpe=call(transformer.wpe),
            blocks=blocks,
            ln_f=call(transformer.ln_f),
            lm_head=call(model.lm_head),
        )

    def __call__(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None,
        layers: Sequence[Any],
        attention: Attention,
    ) -> torch.Tensor:
        """Feed `tokens` [rows] at `positions` [rows, 1] with the attention `mask` [rows, keys]
        (None: no padding); `layers`: the cache's layers (keys and values grow by one position);
        `attention(query, layer, mask, scale)`: sdpa over a layer's keys and values. Returns the
        next float32 logits [rows, vocab]."""
        hidden = self.wte(tokens[:, None]) + self.wpe(positions)
        bool_mask = None if mask is None else mask.bool()[:, None, None, :]
        for block, layer in zip(self.blocks, layers, strict=True):
            query, key, value = block.c_attn(block.ln_1(hidden)).split(block.split_size, dim=2)
            shape = (*query.shape[:-1], -1, block.head_dim)
            layer.keys = torch.cat([layer.keys, key.view(shape).transpose(1, 2)], dim=-2)
            layer.values = torch.cat([layer.values, value.view(shape).transpose(1, 2)], dim=-2)
            out = attention(query.view(shape).transpose(1, 2), layer, bool_mask, block.scaling)
            out = out.transpose(1, 2).contiguous()
            out = out.reshape(*out.shape[:-2], -1).contiguous()
            hidden = block.c_proj(out) + hidden
            hidden = hidden + block.mlp_proj(block.act(block.c_fc(block.ln_2(hidden))))
        return self.lm_head(self.ln_f(hidden))[:, -1, :].float()


__all__ = ["Gpt2Step"]
