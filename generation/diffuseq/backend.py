"""DiffuSeqBackend: the generation.types.Backend for the diffusion model."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from generation.diffuseq.checkpoint import load_model
from generation.diffuseq.data import decode_target, prompt_rows, starts_with_prompt
from generation.diffuseq.diffusion import Diffusion
from generation.diffuseq.model import DiffuSeqModel
from generation.diffuseq.rounding import Rounder, TokenClasses, prompt_prefixes
from generation.diffuseq.samplers import SAMPLERS
from generation.versions import folder_version

# The best-of-N preset (models/diffuseq/README.md): renoise, 10 steps, constrained rounding
# (rounding.py). clamp None = on; temperature 0 = rounding by (constrained) argmax, > 0 samples
# intermediate tokens without the rules; mbr k draws k candidates per prompt inside one call.
DEFAULT_PARAMS: dict[str, Any] = {
    "steps": 10,
    "sampler": "renoise",
    "mbr": 1,
    "clamp": None,
    "temperature": 0.0,
    "rules": True,
}
_SEED_MOD = 2**63 - 1


@dataclass(frozen=True, slots=True)
class DiffuSeqSample:
    """One generated joke: `text` begins with the prompt; `raw` is the model's target as decoded;
    `model_started` says whether the model wrote the starting word itself (False = prepended);
    `ended` whether it wrote an end token (False = the joke ran out of positions)."""

    text: str
    raw: str
    model_started: bool
    ended: bool = True


def candidate_seed(seed: int, index: int) -> int:
    """Seed of MBR candidate `index`; candidate 0 uses the request seed itself, so mbr=1 and
    mbr=k agree on their first candidate."""
    return seed if index == 0 else (seed * 1_000_003 + index * 7_919) % _SEED_MOD


def _f1(a: list[str], b: list[str]) -> float:
    if not a or not b:
        return 0.0
    common: dict[str, int] = {}
    for tok in a:
        common[tok] = common.get(tok, 0) + 1
    hit = 0
    for tok in b:
        if common.get(tok, 0) > 0:
            common[tok] -= 1
            hit += 1
    if hit == 0:
        return 0.0
    p, r = hit / len(b), hit / len(a)
    return 2 * p * r / (p + r)


def mbr_select(candidates: Sequence[str]) -> int:
    """Minimum Bayes risk: index of the candidate with the highest mean word-overlap F1 to the
    others (ties go to the earliest)."""
    if len(candidates) <= 1:
        return 0
    toks = [c.casefold().split() for c in candidates]
    best, best_score = 0, -1.0
    for i, a in enumerate(toks):
        score = sum(_f1(a, b) for j, b in enumerate(toks) if j != i) / (len(toks) - 1)
        if score > best_score:
            best, best_score = i, score
    return best


def with_prompt(prompt: str, raw: str) -> tuple[str, bool]:
    """The joke beginning with the prompt: `raw` as is when it already does, else prompt + raw."""
    if starts_with_prompt(prompt, raw):
        return raw, True
    p = prompt.strip()
    return (f"{p} {raw}".strip() if raw else p), False


class DiffuSeqBackend:
    """A loaded DiffuSeq model that turns batches of starting words into jokes."""

    def __init__(
        self,
        model: DiffuSeqModel,
        tokenizer: Any,
        device: str | torch.device = "cpu",
        model_id: str = "diffuseq",
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.config = model.config
        self.diffusion = Diffusion(
            self.config.diffusion_steps, self.config.schedule, self.config.gamma
        )
        self.model_id = model_id
        self._lock = threading.Lock()
        c = self.config
        self._stop_ids = {c.eos_id, c.pad_id, c.sep_id}
        self._classes: TokenClasses | None = None

    def _rounder(self, prompts: Sequence[str], src_lens: Sequence[int]) -> Rounder:
        c = self.config
        if self._classes is None:  # built once, and only the constrained preset needs it
            self._classes = TokenClasses(self.tokenizer, c.vocab_size, [c.sep_id])
        pre = {p: prompt_prefixes(self.tokenizer, p) for p in set(prompts)}
        return Rounder(self._classes, [pre[p] for p in prompts], src_lens, [c.eos_id, c.pad_id])

    @classmethod
    def from_pretrained(
        cls, path_or_dir: str | Path, device: str = "cpu", threads: int | None = None
    ) -> DiffuSeqBackend:
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        if threads:
            torch.set_num_threads(int(threads))
        folder = Path(path_or_dir)
        model = load_model(folder, device)
        # config.json here is ours (model_type "diffuseq"), which transformers warns about.
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
        finally:
            hf_logging.set_verbosity(verbosity)
        return cls(model, tokenizer, device=device, model_id=folder_version("diffuseq", folder))

    def warmup(self) -> None:
        self.generate(["Штирлиц"], {"steps": 2}, [0])

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        return [s.text for s in self.generate_detailed(prompts, params, seeds)]

    def generate_detailed(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[DiffuSeqSample]:
        """Like `generate`, keeping the raw target and whether the prompt had to be prepended."""
        if len(prompts) != len(seeds):
            raise ValueError("prompts and seeds must have the same length")
        if not prompts:
            return []
        p = {**DEFAULT_PARAMS, **dict(params)}
        sampler = str(p["sampler"])
        if sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
        steps = int(p["steps"])
        k = max(1, int(p["mbr"]))
        clamp = p["clamp"]
        clamp = None if clamp is None else bool(clamp)
        req_seeds = [s if s is not None else secrets.randbits(62) for s in seeds]

        c = self.config
        flat_prompts = [pr for pr in prompts for _ in range(k)]
        gens = []
        for s in req_seeds:
            for j in range(k):
                g = torch.Generator()
                g.manual_seed(candidate_seed(int(s), j))
                gens.append(g)
        ids, src_mask = prompt_rows(
            self.tokenizer, flat_prompts, c.seq_len, c.max_src_len, c.sep_id, c.pad_id
        )
        src_lens = src_mask.sum(1).tolist()
        rounder = self._rounder(flat_prompts, src_lens) if p["rules"] else None
        with self._lock, torch.inference_mode():
            out = self.diffusion.sample(
                self.model,
                ids.to(self.device),
                src_mask.to(self.device),
                gens,
                sampler=sampler,
                steps=steps,
                clamp=clamp,
                temperature=float(p["temperature"]),
                amp=self.device.type == "cuda",
                rounder=rounder,
            ).cpu()
        ended = [
            bool(torch.isin(out[i, src_lens[i] :], torch.tensor([c.eos_id, c.pad_id])).any())
            for i in range(out.shape[0])
        ]
        raws = [
            decode_target(self.tokenizer, out[i].tolist(), src_lens[i], self._stop_ids)
            for i in range(out.shape[0])
        ]
        results: list[DiffuSeqSample] = []
        for i, prompt in enumerate(prompts):
            j = i * k + mbr_select(raws[i * k : (i + 1) * k])
            text, started = with_prompt(prompt, raws[j])
            results.append(DiffuSeqSample(text, raws[j], started, ended[j]))
        return results
