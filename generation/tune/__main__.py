"""`python -m generation.tune --ratings ratings.jsonl --out models/gpt-tuned`: see the package.

Exit codes: 0 written; 1 written but the judge could not be retrained; 2 bad input or nothing to
learn (no folder written); 3 the fluency guard stopped the run (no model written; the checkpoint
stays for `--resume --force`); 130 interrupted (the checkpoint stays for `--resume`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from generation.tune.pairs import PairSettings
from generation.tune.ratings import KNOWN_METHODS
from generation.tune.result import TuneConfig, TuneError
from generation.tune.run import tune
from generation.tune.train import TrainSettings

T, P, C = TrainSettings(), PairSettings(), TuneConfig()


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m generation.tune",
        description="Tune the GPT on people's votes (DPO) into a new model version folder.",
    )
    ap.add_argument("--ratings", type=Path, required=True, help="a python -m storage.export file")
    ap.add_argument("--out", type=Path, required=True, help="the new version folder")
    ap.add_argument("--base", type=Path, default=C.base, help="the model to start from")
    ap.add_argument("--data", type=Path, default=C.data, help="prepared splits (test.jsonl)")
    ap.add_argument("--corpus", type=Path, default=C.corpus, help="jokes corpus for the judge")
    ap.add_argument("--no-judge", action="store_true", help="do not retrain the judge")
    ap.add_argument("--minutes", type=float, default=T.minutes, help="training time budget")
    ap.add_argument("--epochs", type=float, default=T.epochs, help="most passes over the pairs")
    ap.add_argument("--beta", type=float, default=T.beta, help="DPO beta (the KL anchor)")
    ap.add_argument("--lr", type=float, default=T.lr, help="peak learning rate")
    ap.add_argument("--batch-size", type=int, default=T.batch_size, help="pairs per step")
    ap.add_argument("--warmup-steps", type=int, default=T.warmup_steps)
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (slower on AVX2 CPUs)")
    ap.add_argument("--seed", type=int, default=T.seed)
    ap.add_argument("--checkpoint-every", type=float, default=T.checkpoint_every_s, help="s")
    ap.add_argument("--per-joke", type=int, default=P.per_joke, help="partners per disliked joke")
    ap.add_argument("--min-similarity", type=float, default=P.min_similarity)
    ap.add_argument("--heldout", type=float, default=P.heldout, help="share of jokes held out")
    ap.add_argument("--methods", nargs="+", default=list(KNOWN_METHODS), help="methods accepted")
    ap.add_argument("--max-bpc-increase", type=float, default=C.max_bpc_increase)
    ap.add_argument("--bpc-limit", type=int, help="score only the first N test jokes")
    ap.add_argument("--dtype", choices=("float32", "bfloat16"), default=C.dtype)
    ap.add_argument("--keep-checkpoint", action="store_true", help="keep <out>/checkpoint")
    ap.add_argument("--resume", action="store_true", help="continue <out>/checkpoint")
    ap.add_argument("--force", action="store_true", help="write even if the fluency guard fails")
    return ap


def config_of(args: argparse.Namespace) -> TuneConfig:
    train = TrainSettings(
        beta=args.beta,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        minutes=args.minutes,
        warmup_steps=args.warmup_steps,
        bf16=args.bf16,
        seed=args.seed,
        checkpoint_every_s=args.checkpoint_every,
    )
    pairs = PairSettings(
        per_joke=args.per_joke, min_similarity=args.min_similarity, heldout=args.heldout
    )
    return TuneConfig(
        base=args.base,
        data=args.data,
        corpus=args.corpus,
        judge=not args.no_judge,
        train=train,
        pairs=pairs,
        methods=tuple(args.methods),
        max_bpc_increase=args.max_bpc_increase,
        bpc_limit=args.bpc_limit,
        dtype=args.dtype,
        keep_checkpoint=args.keep_checkpoint,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    command = "python -m generation.tune " + " ".join(argv)
    try:
        result = tune(
            args.ratings,
            args.out,
            config_of(args),
            resume=args.resume,
            force=args.force,
            command=command,
        )
    except TuneError as error:
        print(f"tune: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"tune: interrupted; continue with --resume (--out {args.out})", file=sys.stderr)
        return 130
    if result.guard_failed and not result.written:
        return 3
    return 1 if result.judge_error else 0


if __name__ == "__main__":
    raise SystemExit(main())
