"""Cheaper CPU kernels for a loaded causal LM: int8 weights (two flavours) or bfloat16.

Why: decoding one token of a 125M GPT-2 reads all its weights, and on a small CPU that memory
traffic bounds a step. int8 weights are a quarter of float32's, and PyTorch's dynamic-quantized
linear kernel (fbgemm, int8 products with int32 sums) is the fastest matrix path we have on such
CPUs; the output head (hidden x 50264 for ruGPT3-small) is the biggest single matrix.

Modes (`apply_quantization`):

* "int8" (default): `RowwiseInt8Linear` — int8 weights with one scale per output channel, and
  activations quantized with one scale and offset per row (per token). A row's output then does not
  depend on which other rows share the call, to the bit. Together with the fast decoder's
  fixed-width prompt padding (`generation.gpt.decoding.pad_width`: left padding otherwise moves the
  last bits of the activations, which quantization turns into whole steps) a seeded joke is the
  same alone or in a batch of 32, as the service promises. Own code because nothing kept does
  this: the stock kernel shares one activation scale across the batch, and CTranslate2's int8
  engine wrote some jokes differently alone and batched (`python -m bench.engines`,
  docs/BENCHMARKS.md, "GPT engines"). It costs a little more per layer than the stock kernel and
  is more accurate on mixed batches (each row uses the whole 8-bit range).
* "int8-fbgemm": PyTorch's stock `quantize_dynamic`: one activation scale for the whole batch, so
  a row's output depends on its batch-mates (seeded jokes change with them); the fastest.
* "bf16": weights in bfloat16 (no quantization; halves the bytes).
* "none": as loaded.

Every mode but "none" also swaps GPT-2's "gelu_new" activation for PyTorch's one-kernel version of
the same formula (`fuse_gelu`).

GPT-2 keeps its attention and MLP weights in `transformers.pytorch_utils.Conv1D` (a transposed
linear), which the quantizers do not recognise, so those become `nn.Linear` first
(`conv1d_to_linear`, exact). The tied output head is a plain `nn.Linear` and is quantized too; the
input embedding stays float (a lookup, not a product). Quality is checked in bits per character on
held-out jokes (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

#: inputs of at most this many rows reuse one buffer per layer (`RowwiseInt8Linear._unit_rows`)
REUSE_ROWS = 16

# resolved once: looking an operator up through `torch.ops` costs microseconds on every call.
# Its C++ entry point (`_op`), where this torch has one: the Python wrapper around it first
# flattens the arguments looking for fake script objects, which only tracing makes.
_LINEAR_DYNAMIC = torch.ops.quantized.linear_dynamic.default
_LINEAR_DYNAMIC = getattr(_LINEAR_DYNAMIC, "_op", _LINEAR_DYNAMIC)

#: Around the int8 kernel's call. Why: the call's argument parser asks every argument that is
#: not a tensor for `__torch_function__`, and the packed weights (a TorchScript object) answer
#: by throwing two C++ exceptions, whose unwinding cost about as much as the kernel on a decoding
#: step's few rows (measured with perf and gdb's `catch throw`). With `__torch_function__` off
#: for tensor subclasses the parser skips the question; plain tensors go in, so the call itself
#: is the same.
_PLAIN_TENSORS = getattr(torch._C, "DisableTorchFunctionSubclass", contextlib.nullcontext)

#: Accepted names for the quantization setting ("none" keeps the model as loaded).
QUANTIZE_MODES = ("none", "int8", "int8-fbgemm", "bf16")


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


class RowwiseInt8Linear(nn.Module):
    """An int8 linear layer whose rows do not influence each other.

    The stock dynamic kernel picks one activation scale for the whole input, from its minimum and
    maximum. Here every row x is first mapped onto [0, 1] with its own offset and span
    (x = lo + span * u), and a constant row holding 0 and 1 is appended, so the kernel's range is
    always exactly [0, 1]: the same quantization grid whatever the batch. Products are exact int32
    sums, and the row is mapped back with elementwise ops:

        W x + b = span * (W u) + lo * (W 1) + b

    where `W 1` (the dequantized weights' row sums) is computed once.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        """`weight`: [out_features, in_features], as in `nn.Linear`."""
        super().__init__()
        with torch.no_grad():
            weight = weight.detach().to("cpu", torch.float32).contiguous()
            self.in_features = weight.shape[1]
            self.out_features = weight.shape[0]
            # max |w| per row; the inf-norm makes one pass without an abs() copy (faster start)
            peak = torch.linalg.vector_norm(weight, float("inf"), dim=1)
            scales = (peak / 127).clamp_min(1e-12).double()
            zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
            qweight = torch.quantize_per_channel(weight, scales, zero_points, 0, torch.qint8)
            del weight
            self._packed = torch.ops.quantized.linear_prepack(qweight, None)
            # W 1 of the dequantized weights, without materialising them in float
            # exact integer sums (int32 is twice as fast as float64 here and gives the same values)
            sums = qweight.int_repr().sum(dim=1, dtype=torch.int32).double() * scales
            del qweight
            if bias is None:
                bias = torch.zeros(self.out_features)
            # Plain attributes, not buffers: derived, CPU float32 by construction (the packed
            # weights cannot move either), and read on every call, where a buffer's lookup
            # through `nn.Module.__getattr__` costs about a microsecond each.
            self.row_sums = sums.float()
            self.bias = bias.detach().to("cpu", torch.float32).clone()
            self.sentinel = torch.zeros(1, self.in_features)
            self.sentinel[0, 0] = 1.0
        self._scratch = threading.local()  # the reused input buffer (`_unit_rows`), per thread

    @classmethod
    def from_linear(cls, linear: nn.Module) -> RowwiseInt8Linear:
        """From an `nn.Linear` or a transformers `Conv1D` (whose weight is stored transposed)."""
        weight = linear.weight if isinstance(linear, nn.Linear) else linear.weight.t()
        return cls(weight, linear.bias)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_scratch", None)  # a per-thread cache; copies start with their own
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._scratch = threading.local()

    def _unit_rows(self, rows: int) -> torch.Tensor:
        """The kernel's input: `rows` rows to fill plus the constant last row.

        Small inputs (a single request's decoding steps) reuse one buffer per layer and thread:
        allocating and filling it is a real share of the row-wise work there.
        """
        if rows > REUSE_ROWS:
            unit = torch.empty((rows + 1, self.in_features), dtype=torch.float32)
            unit[-1:] = self.sentinel
            return unit
        unit = getattr(self._scratch, "unit", None)
        if unit is None or unit.shape[0] != rows + 1:
            unit = torch.empty((rows + 1, self.in_features), dtype=torch.float32)
            unit[-1:] = self.sentinel
            self._scratch.unit = unit
        return unit

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Written for the one-row decoding step, where this wrapper's own cost is about half of
        # the layer's: positional arguments, pre-resolved operators, no module attribute
        # lookups. The arithmetic is fixed by the class docstring.
        rows = x.reshape(-1, self.in_features)
        if rows.dtype != torch.float32:
            rows = rows.float()
        count = rows.shape[0]
        # amin + amax: faster than aminmax on decoding-step shapes (measured)
        lo = torch.amin(rows, 1, True)
        span = torch.amax(rows, 1, True).sub_(lo).clamp_(min=1e-12)
        unit = self._unit_rows(count)
        torch.sub(rows, lo, out=unit[:count]).div_(span)
        with _PLAIN_TENSORS():
            product = _LINEAR_DYNAMIC(unit, self._packed, True)  # reduce_range=True
        # W x + b = span * (W u) + (lo * (W 1) + b), elementwise per row
        out = torch.addcmul(self.bias, lo, self.row_sums).addcmul_(product[:count], span)
        out = out.view(*x.shape[:-1], self.out_features)
        return out if x.dtype == torch.float32 else out.to(x.dtype)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8 rowwise"


def quantize_int8(model: nn.Module, *, rowwise: bool = True) -> nn.Module:
    """int8 weights for every linear layer (Conv1D converted first); CPU only.

    rowwise: `RowwiseInt8Linear` (batch-invariant); False: PyTorch's stock dynamic quantization.
    Returns the model (modified in place), in eval mode and float32 outside the int8 layers.
    """
    model.float().eval()
    if rowwise:
        from transformers.pytorch_utils import Conv1D

        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if type(child) is nn.Linear or isinstance(child, Conv1D):
                    setattr(parent, name, RowwiseInt8Linear.from_linear(child))
        _own_float_tensors(model)
        return model
    conv1d_to_linear(model)
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch.ao.quantization is deprecated in favour of torchao, which is not a dependency here;
        # the eager dynamic path still works and is what this project measured.
        warnings.simplefilter("ignore")
        quantize_dynamic(
            model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True
        )
    return model


def _own_float_tensors(model: nn.Module) -> None:
    """Copy what stays float (embeddings, norms) out of the loaded file's memory map.

    `from_pretrained` may leave weights as views of the mmapped safetensors file; every page the
    quantizer read then stays resident as long as one view lives. Owning copies of the few float
    tensors left lets the whole mapping go (the resident size of an int8 model about halves,
    docs/BENCHMARKS.md, cold start).
    """
    with torch.no_grad():
        for module in model.modules():
            for param in list(module.parameters(recurse=False)):
                param.data = param.data.clone()
            for name, buffer in list(module.named_buffers(recurse=False)):
                if buffer is not None:
                    setattr(module, name, buffer.clone())
    import gc

    gc.collect()


def apply_quantization(model: Any, mode: str | None) -> Any:
    """Apply a `QUANTIZE_MODES` setting to a loaded model and return it.

    "none"/None/"": unchanged. int8 on a non-CPU device: unchanged, with a warning.
    """
    mode = (mode or "none").lower()
    if mode not in QUANTIZE_MODES:
        raise ValueError(f"unknown quantization {mode!r}; use one of {QUANTIZE_MODES}")
    if mode == "none":
        return model
    fuse_gelu(model)
    if mode == "bf16":
        return model.to(torch.bfloat16).eval()
    device = next(model.parameters()).device
    if device.type != "cpu":
        # The default setting must not stop a bot moved to a GPU: there float is the fast path.
        log.warning("int8 dynamic quantization is CPU-only; keeping the model as is on %s", device)
        return model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized-tensor creation is flagged as deprecated
        return quantize_int8(model, rowwise=mode == "int8")


def fuse_gelu(model: nn.Module) -> int:
    """Replace transformers' `NewGELUActivation` ("gelu_new", GPT-2's activation) by its
    `GELUTanh` ("gelu_pytorch_tanh"), in place; return how many were replaced.

    Why: both compute the same tanh approximation of GELU, but "gelu_new" is written as seven
    elementwise ops in Python and the other is one fused kernel, several times faster. The two
    differ by float rounding only (bits per character unchanged, docs/BENCHMARKS.md §3).
    """
    from transformers.activations import ACT2FN, NewGELUActivation

    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is NewGELUActivation:
                setattr(parent, name, ACT2FN["gelu_pytorch_tanh"])
                replaced += 1
    return replaced


def is_quantized(model: nn.Module) -> bool:
    """Whether any layer of `model` is an int8 linear (either flavour)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, (DynamicLinear, RowwiseInt8Linear)) for m in model.modules())


__all__ = [
    "QUANTIZE_MODES",
    "RowwiseInt8Linear",
    "apply_quantization",
    "conv1d_to_linear",
    "fuse_gelu",
    "is_quantized",
    "quantize_int8",
]
