"""The DiffuSeq denoiser: a pre-LN transformer encoder over noisy token embeddings.

The token embedding is learned end to end and tied to the output head (logits are dot products
with the embedding table plus a bias), as in DiffuSeq: the rounding loss on that head is what keeps
the embedding space decodable. `mean_embed` is DiffuSeq-v2's learned soft absorbing state, the
centre the target part is noised around.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from generation.diffuseq.config import DiffuSeqConfig


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, shape (B, dim)."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class DiffuSeqModel(nn.Module):
    """Predicts the clean embeddings x0 of a whole `[src][SEP][tgt][PAD…]` sequence from z_t."""

    def __init__(self, config: DiffuSeqConfig) -> None:
        super().__init__()
        c = config
        self.config = c
        self.embed = nn.Embedding(c.vocab_size, c.emb_dim)
        nn.init.normal_(self.embed.weight, std=1.0)
        self.mean_embed = nn.Parameter(torch.randn(c.emb_dim) * c.emb_dim**-0.5)
        self.lm_bias = nn.Parameter(torch.zeros(c.vocab_size))
        self.in_proj = nn.Sequential(
            nn.Linear(c.emb_dim, c.hidden), nn.Tanh(), nn.Linear(c.hidden, c.hidden)
        )
        self.pos = nn.Embedding(c.seq_len, c.hidden)
        nn.init.normal_(self.pos.weight, std=0.02)
        self.time_mlp = nn.Sequential(
            nn.Linear(c.time_dim, 4 * c.time_dim), nn.SiLU(), nn.Linear(4 * c.time_dim, c.hidden)
        )
        self.drop = nn.Dropout(c.dropout)
        layer = nn.TransformerEncoderLayer(
            c.hidden,
            c.heads,
            c.ffn,
            c.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, c.layers, norm=nn.LayerNorm(c.hidden), enable_nested_tensor=False
        )
        self.out_proj = nn.Sequential(
            nn.Linear(c.hidden, c.hidden), nn.Tanh(), nn.Linear(c.hidden, c.emb_dim)
        )

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        """z: (B, L, emb_dim) noisy embeddings; t: (B,) integer steps in [0, T). Returns x0-hat."""
        length = z.shape[1]
        # Like DiffuSeq, the network sees t rescaled to [0, 1000) whatever T is.
        t_in = t.float() * (1000.0 / self.config.diffusion_steps)
        temb = self.time_mlp(timestep_embedding(t_in, self.config.time_dim))
        h = self.in_proj(z) + self.pos.weight[:length][None] + temb[:, None]
        h = self.encoder(self.drop(h))
        return self.out_proj(h)

    def logits(self, x: Tensor) -> Tensor:
        """The tied rounding head: similarity of each vector to every token embedding."""
        return x @ self.embed.weight.t() + self.lm_bias

    def nearest_embedding(self, x: Tensor) -> Tensor:
        """The clamping trick: replace each vector by the closest token embedding (L2)."""
        w = self.embed.weight
        dist = (w * w).sum(-1) - 2 * (x @ w.t())  # ‖x‖² is constant per row and dropped
        return self.embed(dist.argmin(-1))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
