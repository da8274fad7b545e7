"""Model folder layout: config.json, model.safetensors and the tokenizer files side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from generation.diffuseq.config import DiffuSeqConfig
from generation.diffuseq.model import DiffuSeqModel

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def save_pretrained(
    model: DiffuSeqModel,
    tokenizer: Any,
    out_dir: str | Path,
    dtype: torch.dtype = torch.float32,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write the folder `from_pretrained` reads. fp16 halves the size for the bigger GPU preset."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    tmp = out / (WEIGHTS + ".tmp")
    save_file(state, str(tmp), metadata={"format": "pt", **(metadata or {})})
    tmp.replace(out / WEIGHTS)
    model.config.save(out / CONFIG)
    tokenizer.save_pretrained(str(out))
    return out


def load_model(path: str | Path, device: str | torch.device = "cpu") -> DiffuSeqModel:
    """Rebuild the model from a folder in fp32, in eval mode."""
    folder = Path(path)
    config = DiffuSeqConfig.load(folder / CONFIG)
    model = DiffuSeqModel(config)
    state = {k: v.float() for k, v in load_file(str(folder / WEIGHTS)).items()}
    model.load_state_dict(state)
    return model.to(device).eval()
