"""DiffuSeq's diffusion: the noise schedule, partial noising, the losses and the four samplers."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from generation.diffuseq.data import prompt_rows
from generation.diffuseq.diffusion import Diffusion, alphas_cumprod_for
from generation.diffuseq.model import DiffuSeqModel
from generation.diffuseq.rounding import Rounder, TokenClasses, prompt_prefixes
from generation.diffuseq.samplers import SAMPLERS, randn_rows
from tests.diffuseq_helpers import (
    ConstantDenoiser,
    seeded_model_and_batch,
    tiny_batch,
    tiny_config,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_schedule_monotone() -> None:
    ab = alphas_cumprod_for("sqrt", 2000)
    assert ab.shape == (2000,)
    assert bool((ab[1:] < ab[:-1]).all())
    assert 0.98 < float(ab[0]) < 0.99 and float(ab[-1]) < 1e-3
    d = Diffusion(2000)
    assert bool((d.sqrt_1mab[1:] > d.sqrt_1mab[:-1]).all())


def test_noising_never_touches_source(tok_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = tiny_config(tokenizer)
    model = DiffuSeqModel(cfg)
    diffusion = Diffusion(cfg.diffusion_steps, gamma=1.0)
    batch, _ = tiny_batch(tokenizer, cfg)
    emb = model.embed(batch.ids)
    for t in (0, 1000, 1999):
        tt = torch.full((batch.ids.shape[0],), t)
        zt, _ = diffusion.q_sample(model, batch, tt)
        src = batch.src_mask
        assert torch.equal(zt[src], emb[src])
        assert not torch.isclose(zt[~src], emb[~src]).all(-1).any()
    # The sampler also writes the source back at every step: its tokens come out unchanged.
    g = [torch.Generator().manual_seed(i) for i in range(batch.ids.shape[0])]
    out = diffusion.sample(model, batch.ids, batch.src_mask, g, steps=3)
    assert torch.equal(out[batch.src_mask], batch.ids[batch.src_mask])


def test_sampler_inputs_match_training(tok_dir: Path) -> None:
    """z_T = m + ε on the target (q(z_T | x0) has ᾱ_T ≈ 0), clean source embeddings at every
    call, integer t on a strictly decreasing grid from T-1, and the output read off x0-hat."""
    model, cfg, batch = seeded_model_and_batch(tok_dir, 2)
    diffusion = Diffusion(cfg.diffusion_steps, cfg.schedule, cfg.gamma)
    assert float(diffusion.alphas_cumprod[-1]) < 1e-6
    src = batch.src_mask
    emb = model.embed(batch.ids).detach()
    for sampler in SAMPLERS:
        oracle = ConstantDenoiser(model, batch.ids)
        gens = [torch.Generator().manual_seed(i) for i in range(2)]
        out = diffusion.sample(oracle, batch.ids, src, gens, sampler=sampler, steps=6)
        assert torch.equal(out, batch.ids), sampler
        z0, _t0 = oracle.calls[0]
        eps = randn_rows([torch.Generator().manual_seed(i) for i in range(2)], (24, 32), "cpu")
        assert torch.allclose(z0[~src], (model.mean_embed + eps)[~src]), sampler
        ts = [int(t[0]) for _, t in oracle.calls]
        assert ts == diffusion.time_grid(6)[:-1] and ts[0] == cfg.diffusion_steps - 1
        assert all(t.dtype == torch.long for _, t in oracle.calls)
        for z, _ in oracle.calls:
            assert torch.equal(z[src], emb[src]), sampler
    grid = diffusion.time_grid(20)
    assert grid[0] == 1999 and grid[-1] == 0 and all(a > b for a, b in itertools.pairwise(grid))
    assert diffusion.time_grid(5000) == list(range(1999, -1, -1))


def test_ode_samplers_exact_for_a_known_x0(tok_dir: Path) -> None:
    """With x0-hat fixed, DDIM and DPM-Solver++(2M) solve the probability-flow ODE exactly:
    every state they feed the network is z_t = m + √ᾱ_t (x0 − m) + √(1−ᾱ_t) ε_T."""
    model, cfg, batch = seeded_model_and_batch(tok_dir)
    diffusion = Diffusion(cfg.diffusion_steps, cfg.schedule, cfg.gamma)
    m = model.mean_embed.detach()
    x0 = model.embed(batch.ids).detach() - m
    tgt = ~batch.src_mask
    eps = randn_rows([torch.Generator().manual_seed(0)], (24, 32), "cpu")
    for sampler in ("ddim", "dpm"):
        oracle = ConstantDenoiser(model, batch.ids)
        diffusion.sample(
            oracle, batch.ids, batch.src_mask, [torch.Generator().manual_seed(0)], sampler, 8
        )
        for z, t in oracle.calls[1:]:
            k = int(t[0])
            want = m + diffusion.sqrt_ab[k] * x0 + diffusion.sqrt_1mab[k] * eps
            # Off only by √ᾱ_T (x0 − m) ≈ 5e-4·x0: the chain starts at m + ε, not q(z_T | x0).
            assert torch.allclose(z[tgt], want[tgt], atol=5e-3), (sampler, k)


def test_stochastic_samplers_follow_the_forward_process(tok_dir: Path) -> None:
    """With x0-hat fixed, the states `renoise` and `ancestral` feed the network have the
    training marginal q(z_t | x0): the same absorbed fraction (renoise mirrors the v2 discrete
    noise) and the same Gaussian spread as `Diffusion.q_sample`."""
    model, cfg, batch = seeded_model_and_batch(tok_dir)
    diffusion = Diffusion(cfg.diffusion_steps, cfg.schedule, cfg.gamma)
    rows = 256
    big = type(batch)(
        batch.ids.repeat(rows, 1), batch.src_mask.repeat(rows, 1), batch.weights.repeat(rows, 1)
    )
    m = model.mean_embed.detach()
    e = model.embed(big.ids).detach()
    tgt = ~big.src_mask

    def stats(z: torch.Tensor, k: int) -> tuple[float, float]:
        # Absorbed positions sit at m + noise; kept ones at m + a(e − m) + noise.
        a = float(diffusion.sqrt_ab[k])
        r_keep = (z - m - a * (e - m))[tgt].norm(dim=-1)
        r_abs = (z - m)[tgt].norm(dim=-1)
        absorbed = (r_abs < r_keep).float().mean()
        spread = torch.minimum(r_keep, r_abs).pow(2).mean() / z.shape[-1]
        return float(absorbed), float(spread)

    for sampler in ("renoise", "ancestral"):
        oracle = ConstantDenoiser(model, big.ids)
        gens = [torch.Generator().manual_seed(i) for i in range(rows)]
        with torch.no_grad():
            diffusion.sample(oracle, big.ids, big.src_mask, gens, sampler, 10)
            for z, t in oracle.calls[3:]:
                k = int(t[0])
                if k < 20:
                    continue  # a and s are too far apart to tell absorbed from kept apart
                zq, _ = diffusion.q_sample(
                    model, big, torch.full((big.ids.shape[0],), k), torch.Generator().manual_seed(k)
                )
                got, want = stats(z, k), stats(zq, k)
                if sampler == "renoise":
                    assert abs(got[0] - want[0]) < 0.05, (k, got, want)
                assert abs(got[1] / want[1] - 1) < 0.15, (sampler, k, got, want)


def test_losses_are_finite_and_pad_downweighted(tok_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = tiny_config(tokenizer)
    model = DiffuSeqModel(cfg)
    batch, _ = tiny_batch(tokenizer, cfg)
    out = Diffusion(cfg.diffusion_steps).training_losses(model, batch)
    assert set(out) == {"loss", "mse", "tT", "ce", "nll"}
    assert torch.isfinite(out["loss"]) and out["loss"] > 0
    out["loss"].backward()
    assert model.mean_embed.grad is not None and model.embed.weight.grad is not None


# Target token ids that `renoise` (10 steps, constrained rounding) wrote on the seeded tiny model
# before the samplers became objects (samplers.py); the refactor must not change a served joke.
PINNED_RENOISE = [
    [13, 258, 304, 357, 350, 330, 8, 72, 358, 358, 278, 358, 72, 72, 358, 72, 358, 358, 278],
    [324, 386, 17, 72, 12, 17, 72, 278, 72, 262, 278, 72, 12, 19, 19, 17, 72, 325, 12, 17, 12],
]


def test_renoise_output_is_pinned(tok_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = tiny_config(tokenizer, seq_len=24, emb_dim=32)
    torch.manual_seed(0)
    model = DiffuSeqModel(cfg).eval()
    prompts = ["Штирлиц", "Жена"]
    c = cfg
    ids, mask = prompt_rows(tokenizer, prompts, c.seq_len, c.max_src_len, c.sep_id, c.pad_id)
    src_lens = mask.sum(1).tolist()
    classes = TokenClasses(tokenizer, cfg.vocab_size, [cfg.sep_id])
    prefixes = [prompt_prefixes(tokenizer, p) for p in prompts]
    rounder = Rounder(classes, prefixes, src_lens, [cfg.eos_id, cfg.pad_id])
    diffusion = Diffusion(cfg.diffusion_steps, cfg.schedule, cfg.gamma)
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    out = diffusion.sample(model, ids, mask, gens, steps=10, rounder=rounder)
    assert src_lens == [5, 3] and cfg.vocab_size == 402
    assert [row[~m].tolist() for row, m in zip(out, mask, strict=True)] == PINNED_RENOISE
