"""The four samplers, each an object with diffusers' scheduler API: `set_timesteps`, `step`.

`step(model_output, timestep, sample)` takes the denoiser's x0-hat at `timestep` and the current
state, both centred on the absorbing vector (y = z − m, an ordinary variance-preserving
diffusion), and returns the state at the next timestep. `Diffusion.sample` runs the loop.

- `renoise` (served): the next state is drawn from the training forward process q(z_t | x0), so
  every state the network sees is one it was trained on. Written here: no library has it.
- `ddim` (deterministic DDIM, which is first-order DPM-Solver++), `dpm` (DPM-Solver++(2M)) and
  `ancestral` (the DDPM posterior; with steps ≥ T−1 it is DiffuSeq's full chain) are diffusers'
  `DPMSolverMultistepScheduler` and `DDPMScheduler` with x0 prediction (`prediction_type="sample"`)
  on the project's betas.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

if TYPE_CHECKING:
    from generation.diffuseq.diffusion import Diffusion

SAMPLERS = ("renoise", "dpm", "ddim", "ancestral")


def randn_rows(
    generators: Sequence[torch.Generator], shape: Sequence[int], device: torch.device | str
) -> Tensor:
    """One standard-normal tensor per row, each from its own CPU generator.

    Drawing every row from its own generator on the CPU is what makes a prompt's sample depend on
    its seed only, not on its batch-mates or on the device.
    """
    rows = [torch.randn(tuple(shape), generator=g) for g in generators]
    return torch.stack(rows).to(device)


class Sampler(Protocol):
    """What `Diffusion.sample` needs of a sampler (diffusers' scheduler API, tensor out)."""

    @property
    def timesteps(self) -> Sequence[Any]:
        """The timesteps the denoiser is called at, decreasing."""
        ...

    def set_timesteps(self, grid: Sequence[int]) -> None: ...

    def step(self, model_output: Tensor, timestep: Any, sample: Tensor) -> Tensor: ...


class RenoiseSampler:
    """Round x0-hat to tokens, then draw the next state from q(z_t | x0) as training does.

    The caller passes x0-hat already rounded (the embedding of its tokens, minus m). The step
    replaces a token by the absorbing state with probability γ√(1−ᾱ_t), as the v2 discrete noise
    does, adds the σ0 jitter of z0 and fresh Gaussian noise. The current state is not used: every
    step starts again from the tokens.
    """

    def __init__(self, diffusion: Diffusion, generators: Sequence[torch.Generator]) -> None:
        self.sqrt_ab = diffusion.sqrt_ab
        self.sqrt_1mab = diffusion.sqrt_1mab
        self.gamma = diffusion.gamma
        self.generators = list(generators)
        self.timesteps: list[int] = []
        self._next: dict[int, int] = {}

    def set_timesteps(self, grid: Sequence[int]) -> None:
        """`grid` ends at the last state's timestep; the denoiser is called at all others."""
        self.timesteps = list(grid[:-1])
        self._next = dict(itertools.pairwise(grid))

    def step(self, model_output: Tensor, timestep: int, sample: Tensor) -> Tensor:
        _, length, dim = model_output.shape
        device = model_output.device
        t = self._next[int(timestep)]
        a, s = float(self.sqrt_ab[t]), float(self.sqrt_1mab[t])
        sigma0 = float(self.sqrt_1mab[0])
        keep = 1.0 - self.gamma * s
        u = torch.stack([torch.rand((length, 1), generator=g) for g in self.generators])
        x0 = torch.where(u.to(device) < keep, model_output, 0.0)  # 0 = absorbed: z = m
        noise = math.sqrt(s**2 + a**2 * sigma0**2)
        return a * x0 + noise * randn_rows(self.generators, (length, dim), device)


class DiffusersSampler:
    """A diffusers scheduler behind the same `step`, returning the tensor itself."""

    def __init__(self, scheduler: Any, **step_kwargs: Any) -> None:
        self.scheduler = scheduler
        self.step_kwargs = step_kwargs

    @property
    def timesteps(self) -> Sequence[Any]:
        return self.scheduler.timesteps

    def set_timesteps(self, grid: Sequence[int]) -> None:
        # The state after the last call is never read (the output is the last x0-hat), so the
        # scheduler's own final step to the clean sample stands in for the grid's last point.
        with warnings.catch_warnings():
            # diffusers calls np.array on a torch tensor, which numpy 2 flags; nothing to act on.
            warnings.simplefilter("ignore", DeprecationWarning)
            self.scheduler.set_timesteps(timesteps=list(grid[:-1]))

    def step(self, model_output: Tensor, timestep: Any, sample: Tensor) -> Tensor:
        return self.scheduler.step(
            model_output, timestep, sample, return_dict=False, **self.step_kwargs
        )[0]


def make_sampler(
    name: str, diffusion: Diffusion, generators: Sequence[torch.Generator], grid: Sequence[int]
) -> Sampler:
    """The sampler `name` on `diffusion`'s noise schedule, set to the timesteps of `grid`."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; expected one of {SAMPLERS}")
    sampler: Sampler
    if name == "renoise":
        sampler = RenoiseSampler(diffusion, generators)
    else:
        from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

        common = {
            "num_train_timesteps": diffusion.T,
            "trained_betas": diffusion.betas.numpy(),
            "prediction_type": "sample",
        }
        if name == "ancestral":
            scheduler = DDPMScheduler(**common, variance_type="fixed_small", clip_sample=False)
            sampler = DiffusersSampler(scheduler, generator=list(generators))
        else:
            order = 1 if name == "ddim" else 2
            scheduler = DPMSolverMultistepScheduler(
                **common, algorithm_type="dpmsolver++", solver_order=order
            )
            sampler = DiffusersSampler(scheduler)
    sampler.set_timesteps(grid)
    return sampler
