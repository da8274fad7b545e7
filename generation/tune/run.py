"""`tune(...)`: votes -> pairs -> DPO -> measured, guarded, written (and a judge for it).

The steps, each with a clear stop:
1. paths: the ratings file, the base model, the test split and (for the judge) the corpus must
   exist; an existing output folder is never overwritten (only `resume` continues one);
2. votes -> pairs; no pair at all stops the run before anything is written (`NoPairs`);
3. the base is measured (held-out preference accuracy by likelihood margin, test bpc) and its
   log-probabilities of every paired joke become the frozen reference;
4. DPO within the time budget, checkpointed to `<out>/checkpoint/state.pt`;
5. the tuned model is measured as it will be saved; if its bits per character rose by more than
   `max_bpc_increase`, the run says so and writes no model (unless `force`), keeping the
   checkpoint, so `resume=True, force=True` writes it without training again;
6. the version folder, `tune.json` and the model card, then the judge in `<out>/judge`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from generation.evaluation.bpc import fluency_scorer
from generation.evaluation.corpus import read_jokes
from generation.gpt.loading import load_tokenizer, model_id_of
from generation.gpt.scoring import context_length
from generation.tune.dpo import (
    Keyed,
    encode,
    joke_logps,
    likelihood_accuracy,
    mean_dpo_loss,
    reward_accuracy,
)
from generation.tune.judge import retrain_judge
from generation.tune.output import round_to, write_facts, write_model
from generation.tune.pairs import Pair, build_pairs, describe_pairs
from generation.tune.ratings import RatedJoke, read_rated_file
from generation.tune.report import change_lines, model_card
from generation.tune.result import Measures, NoPairs, TuneConfig, TuneError, TuneResult
from generation.tune.train import DpoTrainer

CHECKPOINT = Path("checkpoint") / "state.pt"
Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_paths(ratings: Path, out: Path, config: TuneConfig, resume: bool) -> None:
    """Every input present and the output folder free (or resumable) before any work."""
    if not ratings.is_file():
        raise TuneError(f"no ratings file at {ratings} (write one with python -m storage.export)")
    if not (config.base / "config.json").is_file():
        raise TuneError(f"no model at {config.base} (a folder with config.json and weights)")
    if not (config.data / "test.jsonl").is_file():
        raise TuneError(
            f"no test split at {config.data}/test.jsonl; prepare it with: python -m "
            f"generation.training.corpus --corpus ../shared/data/jokes --out {config.data}"
        )
    if config.judge and not config.corpus.is_dir():
        raise TuneError(f"no joke corpus at {config.corpus} for the judge (or skip it: --no-judge)")
    if out.exists() and not out.is_dir():
        raise TuneError(f"{out} exists and is not a folder")
    others = [p for p in out.iterdir() if p.name != CHECKPOINT.parts[0]] if out.is_dir() else []
    if others:
        raise TuneError(f"{out} already holds a model; a version folder is never overwritten")
    has_checkpoint = (out / CHECKPOINT).is_file()
    if resume and not has_checkpoint:
        raise TuneError(f"nothing to resume: no {out / CHECKPOINT}")
    if has_checkpoint and not resume:
        raise TuneError(f"{out} holds an unfinished run: add --resume, or delete the folder")


def read_pairs(
    ratings: Path, config: TuneConfig, result: TuneResult, say: Say
) -> tuple[list[RatedJoke], list[Pair]]:
    jokes, report = read_rated_file(ratings, config.methods)
    for line in report.lines_of_text():
        say(line)
    result.input = {
        "lines": report.lines,
        "rows": report.rows,
        "jokes": report.jokes,
        "skipped": dict(report.skipped),
        "methods": dict(sorted(report.methods.items())),
        "unknown_methods": dict(report.unknown_methods),
    }
    pairs = build_pairs(jokes, config.pairs)
    result.pairs = describe_pairs(pairs)
    if not any(not p.heldout for p in pairs):
        liked = sum(j.liked for j in jokes)
        disliked = sum(j.disliked for j in jokes)
        what = f"all {len(pairs)} pairs are held out" if pairs else "no pairs"
        raise NoPairs(
            f"no preference pairs to train on ({what}): {len(jokes)} rated jokes, {liked} liked, "
            f"{disliked} disliked. A pair needs a disliked joke and a liked one of the same "
            "method (or a classic joke) with the same prompt or shared words, or an inline pick "
            "with the jokes it was picked over. Nothing was written."
        )
    if not any(p.heldout for p in pairs):
        say("warning: no held-out pairs; held-out accuracy cannot be measured")
    return jokes, pairs


def measure(
    model: Any,
    logps: Mapping[str, float],
    ref: Mapping[str, float],
    split: tuple[Sequence[Keyed], Sequence[Keyed]],
    beta: float,
    bpc_of: Callable[[Any], float],
) -> Measures:
    """The figures of `model` (its log-probs `logps`; `ref` is the base's). For the base itself
    (`logps is ref`) the implicit reward is zero, so its accuracy is the likelihood margin's."""
    train, held = split
    base = logps is ref
    accuracy = likelihood_accuracy if base else lambda p, lp: reward_accuracy(p, lp, ref)
    return Measures(
        heldout_accuracy=accuracy(held, logps),
        heldout_likelihood_accuracy=likelihood_accuracy(held, logps),
        heldout_loss=mean_dpo_loss(held, logps, ref, beta),
        train_accuracy=accuracy(train, logps),
        bpc=bpc_of(model),
    )


def fingerprint(result: TuneResult, config: TuneConfig) -> str:
    """What a resumed run must share with the interrupted one (budgets may grow)."""
    t = config.train
    facts = [result.ratings_sha256, result.base_version, asdict(config.pairs), config.methods]
    facts += [t.beta, t.lr, t.batch_size, t.seed, t.bf16, t.warmup_steps]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()


def load_base(config: TuneConfig) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(str(config.base), named=False)
    model = AutoModelForCausalLM.from_pretrained(str(config.base), dtype=torch.float32)
    return model, tokenizer


def _restore(trainer: DpoTrainer, path: Path, expected: str) -> dict[str, Any]:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved.get("fingerprint") != expected:
        raise TuneError(
            f"{path} is from another run (other ratings, base model or settings); "
            "start a new --out or delete the folder"
        )
    trainer.restore(saved)
    return saved


@dataclass
class Prepared:
    """A loaded base and everything measured against it."""

    model: Any
    split: tuple[list[Keyed], list[Keyed]]  # train, held out: (chosen key, rejected key)
    sequences: dict[str, list[int]]  # key -> token ids of every paired joke
    pad: int
    bpc_of: Callable[[Any], float]
    test_jokes: int


def prepare(pairs: Sequence[Pair], config: TuneConfig) -> Prepared:
    model, tokenizer = load_base(config)
    keys = lambda held: [(p.chosen.key, p.rejected.key) for p in pairs if p.heldout is held]  # noqa: E731
    paired = {j.key: j.text for p in pairs for j in (p.chosen, p.rejected)}
    encoded = encode(tokenizer, list(paired.values()), context_length(model))
    texts = read_jokes(config.data / "test.jsonl", config.bpc_limit)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return Prepared(
        model=model,
        split=(keys(False), keys(True)),
        sequences=dict(zip(paired, encoded, strict=True)),
        pad=pad,
        bpc_of=lambda m: fluency_scorer(m, tokenizer)(texts),
        test_jokes=len(texts),
    )


def train(
    run: Prepared, config: TuneConfig, result: TuneResult, resume: bool, tell: Say
) -> dict[str, float]:
    """Measure the base (or restore it), train, and return the reference log-probs."""
    out = result.out
    trainer = DpoTrainer(run.model, run.split[0], run.sequences, {}, run.pad, config.train)
    trainer.checkpoint = out / CHECKPOINT
    trainer.extra["fingerprint"] = fingerprint(result, config)
    if resume:
        saved = _restore(trainer, out / CHECKPOINT, trainer.extra["fingerprint"])
        ref, result.before = saved["ref"], Measures(**saved["before"])
        tell(f"resumed at step {trainer.state.step} ({trainer.state.elapsed / 60:.1f} min done)")
    else:
        tell(f"measuring the base: {len(run.sequences)} jokes, {run.test_jokes} test jokes")
        ref = joke_logps(run.model, run.sequences, run.pad)
        result.before = measure(run.model, ref, ref, run.split, config.train.beta, run.bpc_of)
    trainer.ref = ref
    trainer.extra |= {"ref": ref, "before": asdict(result.before)}
    state = trainer.run()
    result.steps, result.train_seconds = state.step, state.elapsed
    result.stopped_by = state.stopped_by
    result.first_loss = state.losses[0] if state.losses else None
    result.last_loss = state.losses[-1] if state.losses else None
    return ref


def tune(
    ratings: Path,
    out: Path,
    config: TuneConfig | None = None,
    *,
    resume: bool = False,
    force: bool = False,
    command: str = "",
    say: Say = _stderr,
) -> TuneResult:
    """Tune `config.base` on the votes in `ratings` into the new folder `out`; see the module
    docstring. Raises `TuneError` (`NoPairs`) for what stops a run before it trains; a run the
    fluency guard stops returns with `guard_failed` set and `written` false."""
    config = config or TuneConfig()
    ratings, out = Path(ratings), Path(out)
    result = TuneResult(out=out)

    def tell(message: str) -> None:
        result.messages.append(message)
        say(message)

    check_paths(ratings, out, config, resume)
    result.ratings_sha256 = sha256_of(ratings)
    result.base_version = model_id_of(config.base)
    jokes, pairs = read_pairs(ratings, config, result, tell)
    run = prepare(pairs, config)
    result.train_pairs, result.heldout_pairs = len(run.split[0]), len(run.split[1])
    result.bpc_jokes = run.test_jokes
    ref = train(run, config, result, resume, tell)
    round_to(run.model, config.dtype)
    tuned = joke_logps(run.model, run.sequences, run.pad)
    result.after = measure(run.model, tuned, ref, run.split, config.train.beta, run.bpc_of)
    for line in change_lines(result, config):
        tell(line)
    if (result.bpc_change or 0.0) > config.max_bpc_increase:
        result.guard_failed = True
        tell(_guard_message(result, config, force, out))
        if not force:
            return result
    finish(run.model, jokes, result, config, ratings, command, tell)
    return result


def _guard_message(result: TuneResult, config: TuneConfig, force: bool, out: Path) -> str:
    change = result.bpc_change or 0.0
    head = (
        f"!!! FLUENCY GUARD: bits per character rose by {change:+.4f} "
        f"(more than {config.max_bpc_increase}): the tuned model reads held-out jokes worse."
    )
    if force:
        return head + " Writing it anyway (--force)."
    return head + (
        f" No model written; the checkpoint stays in {out / CHECKPOINT.parent}. Lower --lr, "
        "raise --beta or train shorter; or keep this one with --resume --force."
    )


def finish(
    model: Any,
    jokes: Sequence[RatedJoke],
    result: TuneResult,
    config: TuneConfig,
    ratings: Path,
    command: str,
    tell: Say,
) -> None:
    """Write the version folder, then the judge, then the card that names both."""
    out = result.out
    stage = {
        "what": "DPO on people's votes (python -m generation.tune)",
        "base_version": result.base_version,
        "ratings_sha256": result.ratings_sha256,
        "pairs": {"train": result.train_pairs, "heldout": result.heldout_pairs},
        "beta": config.train.beta,
        "lr": config.train.lr,
        "steps": result.steps,
        "elapsed_s": round(result.train_seconds, 1),
        "torch": torch.__version__,
    }
    result.version = write_model(model, config.base, out, config.dtype, stage)
    result.written = True
    tell(f"wrote {out} ({result.version}; base {result.base_version})")
    if config.judge:
        tell(f"retraining the judge for it into {out}/judge")
        try:
            result.judge_version = retrain_judge(out, jokes, config.corpus)
            tell(f"judge: {result.judge_version}")
        except Exception as error:  # the GPT is written; say what is missing, do not lose it
            result.judge_error = f"{type(error).__name__}: {error}"
            tell(f"!!! the judge could not be retrained: {result.judge_error}")
    card = model_card(result, config, str(ratings), command)
    write_facts(out, result.as_dict() | {"config": _config_dict(config)}, card)
    if not config.keep_checkpoint:
        shutil.rmtree(out / CHECKPOINT.parent, ignore_errors=True)


def _config_dict(config: TuneConfig) -> dict[str, Any]:
    return json.loads(json.dumps(asdict(config), default=str))


__all__ = ["CHECKPOINT", "check_paths", "finish", "measure", "read_pairs", "tune"]
