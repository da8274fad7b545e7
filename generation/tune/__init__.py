"""Tuning the GPT toward what people like: DPO on pairs of jokes built from the bot's votes.

Run: `python -m generation.tune --ratings ratings.jsonl --out models/gpt-tuned` (the ratings
come from `python -m storage.export`); from Python: `tune(ratings, out, TuneConfig(...))`, which
returns a `TuneResult`. Lab code: it may import generation.training and generation.evaluation;
serving code never imports it.

Why our own DPO loss and not TRL's `DPOTrainer`: TRL (1.16) would fit our model class — the
GPT is a plain `GPT2LMHeadModel` — but installing it brings accelerate, datasets, pyarrow, pandas,
dill, multiprocess and xxhash into a project whose bot needs none of them, and its trainer is the
Hugging Face `Trainer`, whose time budget, progress bar and checkpoints would be configured
around rather than used. The loss itself is a few lines (`dpo.py`: the sigmoid loss of
beta * (logratio_chosen - logratio_rejected), the reference being the frozen starting model), so
we keep those lines and the loop (`train.py`) and depend on nothing new.

Why float32 weights by default (`--dtype`): the shipped GPT is stored in bfloat16, whose step
between neighbouring values near a typical weight is larger than what a short DPO run moves it;
saved in bfloat16, much of the tuning would round away. Evaluation always measures the weights
as they are saved.

Why bf16 autocast is off by default (`--bf16`): on this project's CPUs (AVX2, no native bf16)
it made a training step several times slower than float32 when measured; it stays an option
for machines with bf16 units.

Modules: ratings.py (reading an export, forgivingly), pairs.py (which joke was preferred to
which), dpo.py (the loss and the measures), train.py (the loop), output.py (the version folder),
judge.py (the judge for the tuned GPT), report.py (what is printed and the model card),
run.py (`tune`), synthetic.py (a ratings file from human-rated jokes, for smoke runs).
"""

from generation.tune.result import Measures, NoPairs, TuneConfig, TuneError, TuneResult
from generation.tune.run import tune

__all__ = ["Measures", "NoPairs", "TuneConfig", "TuneError", "TuneResult", "tune"]
