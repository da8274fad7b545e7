"""Partial-noising Gaussian diffusion over embeddings (DiffuSeq) with the v2 soft absorbing state.

Only target positions (the joke and the padding after it) are ever noised; source positions are
written back with their clean embeddings at every training and sampling step. The target part is
noised around the learned absorbing vector m:  z_t = m + √ᾱ_t (z0 − m) + √(1−ᾱ_t) ε, so the
samplers (samplers.py) work on y = z − m, which is an ordinary variance-preserving diffusion.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from generation import interrupt
from generation.diffuseq.model import DiffuSeqModel
from generation.diffuseq.samplers import RenoiseSampler, make_sampler, randn_rows

# Token ids (B, L) from the tied head's logits, the ids and the source mask (rounding.Rounder).
Rounding = Callable[[Tensor, Tensor, Tensor], Tensor]


def betas_for(schedule: str, steps: int) -> Tensor:
    """β_t for t = 0..T-1 (float64), built like DiffuSeq's (each capped at 0.999)."""
    if schedule == "sqrt":

        def alpha_bar(u: float) -> float:
            return 1.0 - math.sqrt(u + 0.0001)

    elif schedule == "cosine":

        def alpha_bar(u: float) -> float:
            return math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2

    else:
        raise ValueError(f"unknown noise schedule {schedule!r}")
    betas = [
        min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)
    ]
    return torch.tensor(betas, dtype=torch.float64)


def alphas_cumprod_for(schedule: str, steps: int) -> Tensor:
    """ᾱ_t for t = 0..T-1 (float64)."""
    return torch.cumprod(1.0 - betas_for(schedule, steps), dim=0)


@dataclass
class Batch:
    ids: Tensor  # (B, L) token ids of [src][SEP][tgt][EOS][PAD…]
    src_mask: Tensor  # (B, L) bool, True on source and SEP (never noised)
    weights: Tensor  # (B, L) float loss weights: 0 on source, 1 on target+EOS, small on pad


class Diffusion:
    """Noise schedule, training losses and sampling."""

    def __init__(self, steps: int = 2000, schedule: str = "sqrt", gamma: float = 0.5) -> None:
        self.T = steps
        self.gamma = gamma
        self.betas = betas_for(schedule, steps)
        ab = torch.cumprod(1.0 - self.betas, dim=0)
        self.alphas_cumprod = ab.float()
        self.sqrt_ab = ab.sqrt().float()
        self.sqrt_1mab = (1 - ab).sqrt().float()

    # ------------------------------------------------------------------ training

    def q_sample(
        self,
        model: DiffuSeqModel,
        batch: Batch,
        t: Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Noise a clean batch to step t. Returns (z_t, clean embeddings)."""
        ids, src = batch.ids, batch.src_mask
        dev = ids.device
        emb = model.embed(ids)
        m = model.mean_embed
        ab = self.alphas_cumprod.to(dev)[t][:, None, None]
        tgt = ~src[..., None]

        def rnd(shape: Sequence[int]) -> Tensor:
            return torch.randn(tuple(shape), generator=generator, device=dev)

        # z0 = Emb(w) + σ0 ε on the target (DiffuSeq's _get_x_start); the source stays clean.
        x0 = emb + self.sqrt_1mab[0].item() * rnd(emb.shape)
        # v2 discrete noise: a target token becomes the absorbing vector with prob γ√(1−ᾱ_t).
        p = self.gamma * (1 - ab).sqrt()
        u = torch.rand((*emb.shape[:2], 1), generator=generator, device=dev)
        x0 = torch.where((u < p) & tgt, m.expand_as(x0), x0)
        zt = m + ab.sqrt() * (x0 - m) + (1 - ab).sqrt() * rnd(emb.shape)
        zt = torch.where(tgt, zt, emb)
        return zt, emb

    def training_losses(
        self,
        model: DiffuSeqModel,
        batch: Batch,
        t: Tensor | None = None,
        generator: torch.Generator | None = None,
        autocast: Callable[[], object] | None = None,
        x0_ce_weight: float = 0.0,
    ) -> dict[str, Tensor]:
        """loss = x0 MSE + prior (tT) term + rounding cross-entropy, weighted over the target.

        `nll`, the cross-entropy of the tied head on the predicted x0, is always reported (as
        DiffuSeq logs it) and added to the loss with `x0_ce_weight` (0 = the paper's loss; a
        positive weight is the "anchor" loss of later work, which speeds up early training).
        """
        ids, w = batch.ids, batch.weights
        dev = ids.device
        if t is None:
            t = torch.randint(0, self.T, (ids.shape[0],), device=dev, generator=generator)
        zt, emb = self.q_sample(model, batch, t, generator)
        if autocast is not None:
            with autocast():  # type: ignore[attr-defined]
                pred = model(zt, t)
        else:
            pred = model(zt, t)
        pred = pred.float()
        wsum = w.sum().clamp_min(1e-8)
        mse = (((pred - emb) ** 2).mean(-1) * w).sum() / wsum
        # Prior term: the mean of q(z_T | z0) should sit on the absorbing state.
        m = model.mean_embed
        tT = (((self.sqrt_ab[-1].item() * (emb - m)) ** 2).mean(-1) * w).sum() / wsum
        # Rounding loss on z0 = Emb + σ0 ε, only where the weight is positive.
        sel = w > 0
        x0_noisy = emb[sel] + self.sqrt_1mab[0].item() * torch.randn(
            emb[sel].shape, device=dev, generator=generator
        )
        ce_tok = F.cross_entropy(model.logits(x0_noisy), ids[sel], reduction="none")
        ce = (ce_tok * w[sel]).sum() / wsum
        nll_tok = F.cross_entropy(model.logits(pred[sel]), ids[sel], reduction="none")
        nll = (nll_tok * w[sel]).sum() / wsum
        loss = mse + tT + ce
        if x0_ce_weight:
            loss = loss + x0_ce_weight * nll
        return {
            "loss": loss,
            "mse": mse.detach(),
            "tT": tT.detach(),
            "ce": ce.detach(),
            "nll": nll.detach(),
        }

    # ------------------------------------------------------------------ sampling

    def time_grid(self, steps: int) -> list[int]:
        """`steps`+1 decreasing timesteps from T-1 to 0, evenly spaced in log-SNR.

        Under the sqrt schedule, tokens can be read straight off z_t long before t reaches 0, so a
        time-uniform grid spends many network calls where nothing is left to decide; log-SNR
        spacing puts them where the text is actually formed.
        """
        steps = max(1, int(steps))
        if steps >= self.T - 1:
            return list(range(self.T - 1, -1, -1))
        lam = torch.log(self.sqrt_ab.double() / self.sqrt_1mab.double())
        # ᾱ at T-1 is ~1e-7 (the last beta is capped), so start the even spacing at T-2.
        targets = torch.linspace(float(lam[self.T - 2]), float(lam[0]), steps + 1)
        grid = [int(torch.searchsorted(-lam, -v).clamp(max=self.T - 1)) for v in targets]
        grid[0], grid[-1] = self.T - 1, 0
        out = [grid[0]]
        for t in grid[1:]:  # strictly decreasing; duplicates (a too fine grid) are dropped
            if t < out[-1]:
                out.append(t)
        return out

    def _x0(self, model: DiffuSeqModel, z: Tensor, t: int, amp: bool) -> tuple[Tensor, Tensor]:
        """The denoiser's x0-hat at step t and its tied-head logits."""
        tt = torch.full((z.shape[0],), t, dtype=torch.long, device=z.device)
        with torch.autocast(z.device.type, dtype=torch.bfloat16, enabled=amp):
            x0 = model(z, tt)
        x0 = x0.float()
        return x0, model.logits(x0)

    @torch.no_grad()
    def sample(
        self,
        model: DiffuSeqModel,
        ids: Tensor,
        src_mask: Tensor,
        generators: Sequence[torch.Generator],
        sampler: str = "renoise",
        steps: int = 20,
        clamp: bool | None = None,
        amp: bool = False,
        temperature: float = 0.0,
        rounder: Rounding | None = None,
    ) -> Tensor:
        """Denoise the target part of every row; returns token ids (B, L).

        Every sampler (samplers.py) starts at z_T = m + ε on the target (q(z_T | x0) has ᾱ_T close
        to 0) and calls the denoiser on the points of `time_grid(steps)` but the last.

        `clamp` (default on) replaces x0-hat by the embedding of its argmax token before the
        update (DiffuSeq's anchoring); `renoise` always does. Without it, the ODE solvers keep the
        initial noise along the whole path and the network reads it as tokens: word salad on
        every model we trained. `temperature` > 0 makes `renoise` draw those tokens from the
        softmax instead. The output is the argmax of the last x0-hat (not of z_0, which still
        carries noise). `rounder` (see rounding.py) replaces every argmax by a constrained choice.
        """
        scheduler = make_sampler(sampler, self, generators, self.time_grid(steps))
        renoise = isinstance(scheduler, RenoiseSampler)
        anchor = renoise or clamp is None or clamp
        length, dim = ids.shape[1], model.config.emb_dim
        m = model.mean_embed
        clean = model.embed(ids)  # written back on the source at every call
        target = ~src_mask[..., None]
        y = randn_rows(generators, (length, dim), ids.device)
        logits = torch.zeros(0)

        def round_(logits: Tensor) -> Tensor:
            if rounder is None:
                return logits.argmax(-1)
            return rounder(logits, ids, src_mask).to(ids.device)

        for t in scheduler.timesteps:
            interrupt.check()
            x0, logits = self._x0(model, torch.where(target, m + y, clean), int(t), amp)
            if renoise and temperature > 0:
                x0 = model.embed(draw_tokens(logits, temperature, generators).to(ids.device))
            elif anchor:
                x0 = model.embed(round_(logits))
            y = scheduler.step(x0 - m, t, y)
        return torch.where(src_mask, ids, round_(logits))


def draw_tokens(
    logits: Tensor, temperature: float, generators: Sequence[torch.Generator]
) -> Tensor:
    """One token per position from softmax(logits / temperature), each row from its generator."""
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    picks = [
        torch.multinomial(probs[i].cpu(), 1, generator=g)[:, 0] for i, g in enumerate(generators)
    ]
    return torch.stack(picks)
