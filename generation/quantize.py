"""Cheaper CPU kernels for a loaded causal LM: int8 dynamic quantization or bfloat16.

Why: decoding one token of a 125M GPT-2 reads all its weights; on a 2-core CPU with ~30 GB/s that
alone is ~17 ms in float32. int8 weights are a quarter of that, and PyTorch's dynamic-quantized
linear layers (fbgemm / oneDNN kernels, activations quantized on the fly per batch) are the fastest
matrix path we have on such CPUs; the output head (hidden x 50264) is the biggest single matrix.
bfloat16 halves the bytes and uses the CPU's bf16 dot products where it has them.

GPT-2 keeps its attention and MLP weights in `transformers.pytorch_utils.Conv1D` (a transposed
linear), which `quantize_dynamic` does not recognise, so those become `nn.Linear` first
(`conv1d_to_linear`, exact: the same products in the same order). The tied output head is a plain
`nn.Linear` and is quantized too; the input embedding stays float (a lookup, not a product).

Quality must be checked after quantizing (bits per character on held-out jokes, see
`bench.generation --bpc`): per-channel weight scales (the default here) keep it closer to float
than one scale per matrix.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

#: Accepted names for the quantization setting ("none" keeps the model as loaded).
QUANTIZE_MODES = ("none", "int8", "int8-tensor", "bf16")


def conv1d_to_linear(model: nn.Module) -> int:
    """Replace every transformers `Conv1D` in `model` by an equivalent `nn.Linear` (in place).

    Returns the number of layers replaced. `Conv1D(nf, nx)` computes `x @ W + b` with W of shape
    [nx, nf]; `nn.Linear` keeps W transposed ([nf, nx]).
    """
    try:
        from transformers.pytorch_utils import Conv1D
    except ImportError:  # pragma: no cover - transformers always has it
        return 0
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                nx, nf = child.weight.shape
                linear = nn.Linear(nx, nf, bias=child.bias is not None)
                linear = linear.to(device=child.weight.device, dtype=child.weight.dtype)
                with torch.no_grad():
                    linear.weight.copy_(child.weight.t())
                    if child.bias is not None:
                        linear.bias.copy_(child.bias)
                setattr(parent, name, linear)
                replaced += 1
    return replaced


def quantize_int8(model: nn.Module, *, per_channel: bool = True) -> nn.Module:
    """int8 dynamic quantization of every linear layer (Conv1D converted first); CPU only.

    Returns the quantized model (the same object, modified in place), in eval mode and float32
    outside the quantized layers (dynamic quantization needs float32 activations).
    """
    from torch.ao.quantization import (
        default_dynamic_qconfig,
        per_channel_dynamic_qconfig,
        quantize_dynamic,
    )

    model.float().eval()
    conv1d_to_linear(model)
    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency here;
        # the eager dynamic path still works and is what this project measured.
        warnings.simplefilter("ignore")
        quantize_dynamic(model, {nn.Linear: qconfig}, dtype=torch.qint8, inplace=True)
    return model


def apply_quantization(model: Any, mode: str | None) -> Any:
    """Apply a `QUANTIZE_MODES` setting to a loaded model and return it.

    "int8": per-channel dynamic int8 (CPU); "int8-tensor": one scale per matrix; "bf16": cast the
    weights to bfloat16; "none"/None/"": unchanged. int8 on a non-CPU device: unchanged, with a
    warning.
    """
    mode = (mode or "none").lower()
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantization {mode!r}; use one of {QUANTIZE_MODES}")
    if mode == "none":
        return model
    if mode == "bf16":
        return model.to(torch.bfloat16).eval()
    device = next(model.parameters()).device
    if device.type != "cpu":
        # The default setting must not stop a bot moved to a GPU: there float is the fast path.
        log.warning("int8 dynamic quantization is CPU-only; keeping the model as is on %s", device)
        return model
    return quantize_int8(model, per_channel=mode == "int8")


def is_quantized(model: nn.Module) -> bool:
    """Whether any layer of `model` is a dynamic-quantized linear."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(module, DynamicLinear) for module in model.modules())


__all__ = [
    "QUANTIZE_MODES",
    "apply_quantization",
    "conv1d_to_linear",
    "is_quantized",
    "quantize_int8",
]
