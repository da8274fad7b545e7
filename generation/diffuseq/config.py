"""DiffuSeq configuration: one dataclass that is saved as config.json next to the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

MODEL_TYPE = "diffuseq"


@dataclass
class DiffuSeqConfig:
    """Everything needed to rebuild the denoiser and the diffusion process.

    Token ids live here (not only in the tokenizer) so that sampling never has to guess which
    special token plays which role after tokens were added to the tokenizer.
    """

    vocab_size: int
    sep_id: int
    pad_id: int
    eos_id: int
    seq_len: int = 64
    max_src_len: int = 8
    emb_dim: int = 128
    hidden: int = 256
    layers: int = 4
    heads: int = 4
    ffn: int = 1024
    time_dim: int = 128
    dropout: float = 0.1
    diffusion_steps: int = 2000
    schedule: str = "sqrt"
    # DiffuSeq-v2: probability scale of replacing a target token by the soft absorbing state.
    gamma: float = 0.5
    # Loss weight of the pad positions after the first end token (target and end token weigh 1).
    pad_weight: float = 0.05
    train_steps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": MODEL_TYPE, **asdict(self)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> DiffuSeqConfig:
        raw = json.loads(Path(path).read_text())
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


# Model-size presets for the trainer: "tiny" for tests, "cpu" for a run on a small CPU, "gpu" for a
# short run on one large accelerator (saved in fp16 to stay under the 40 MB size limit).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"emb_dim": 32, "hidden": 64, "layers": 2, "heads": 2, "ffn": 128},
    "cpu": {"emb_dim": 128, "hidden": 192, "layers": 4, "heads": 4, "ffn": 768},
    "gpu": {"emb_dim": 128, "hidden": 384, "layers": 8, "heads": 6, "ffn": 1536},
}
