"""Ratings that tune the bot: votes -> /export -> generation.tune -> the tuned model as arm B.

    python -m bench.feedback_loop                    # the run in docs/QUALITY.md, ~40 min
    python -m bench.feedback_loop --jokes 200 --jokes-b 200 --tune-minutes 1 --workdir /tmp/fl

Simulated users with a hidden taste (bench/feedback_taste.py: a text judge trained on one half
of the human-rated jokes; the tuner sees only their votes) talk to the real bot (its own process,
`python -m bot`'s main(), over the local Bot API server) and press the real 👍/👎 buttons:

1. phase A: the bot serves `--method` from the shipped model; the users vote on `--jokes` jokes
   written for words of one half of the word pool;
2. an admin sends `/export` through the bot; the votes become a ratings file (the bot sends at
   most 20 messages of JSON lines; past that it says to use `python -m storage.export` on the
   server, which the bench then does, checking that the bot's lines agree with the file);
   `generation.tune` DPO-tunes the GPT on them within `--tune-minutes` and retrains the judge into
   `<tuned>/judge`;
3. phase B: the bot restarts with `EXPERIMENT=<method>:<base>,<tuned>` (arm B ranks its
   candidates with its own judge, generation/experiments.py) and the same users vote on jokes for
   the other half of the words. The verdict is storage.experiments' own: each arm's like ratio with
   its 95% Wilson interval, and whether the intervals overlap.

Everything goes under `--workdir` (default runs/feedback_loop/<date-time>; runs/ is not
committed): the database, the ratings, the tuned model, bot.log, report.json and report.md.
Not part of the test run; results: docs/QUALITY.md ("Ratings that tune the bot").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.common import bench_parser, command_line, machine, machine_line  # noqa: E402
from bench.feedback_report import arm_figures, markdown, ratio  # noqa: E402
from bench.feedback_taste import Taste, train_taste  # noqa: E402
from bench.feedback_users import (  # noqa: E402
    FeedbackBot,
    Round,
    export_via_bot,
    records,
    stats_via_bot,
    vote_round,
)
from bench.soak_bot import TOKEN  # noqa: E402

WORDS_FILE = ROOT / "bench" / "eval_words.txt"


def word_pool(test_jokes: Path | None, seed: int) -> tuple[list[str], list[str]]:
    """Starting words for the two phases, disjoint: bench/eval_words.txt and the first words of
    the held-out test jokes, shuffled with `seed` and cut in two."""
    words = WORDS_FILE.read_text(encoding="utf-8").split()
    if test_jokes is not None and test_jokes.is_file():
        for line in test_jokes.read_text(encoding="utf-8").splitlines():
            first = (json.loads(line).get("text") or "").split(maxsplit=1)[:1]
            word = first[0].strip(".,!?:;-—«»\"'()") if first else ""
            if len(word) >= 3 and word.isalpha():
                words.append(word.capitalize())
    unique = sorted(set(words))
    random.Random(seed).shuffle(unique)
    half = len(unique) // 2
    return unique[:half], unique[half:]


def enough(words: list[str], jokes: int) -> list[str]:
    """The phase's words in order, repeated if the phase needs more jokes than there are words."""
    return (words * (jokes // max(1, len(words)) + 2))[: jokes * 2]


async def phase(
    api: Any, bot: FeedbackBot, taste: Taste, words: list[str], args: Any, jokes: int
) -> tuple[Round, str, Any]:
    """Start the bot, let the users vote on `jokes` jokes, ask for /stats (and, in phase A,
    /export), stop the bot."""
    export = bot.experiment is None
    await bot.start()
    try:
        result = await vote_round(
            api, enough(words, jokes), taste.likes, users=args.users, jokes=jokes
        )
        await api.wait_all_updates_answered(timeout=60)
        stats = await stats_via_bot(api)
        exported = await export_via_bot(api) if export else None
    finally:
        await bot.stop()
    return result, stats, exported


async def write_ratings(exported: Any, database_url: str, out: Path) -> dict[str, Any]:
    """The ratings file: the bot's /export lines, or (when the bot cut its export short)
    storage.export's file, checked against the lines the bot did send."""
    from storage.export import export_ratings

    facts = {"bot_count": exported.count, "bot_lines": len(exported.lines)}
    facts["bot_truncated"] = exported.truncated
    if not exported.truncated:
        out.write_text("\n".join(exported.lines) + "\n", encoding="utf-8")
        facts["file_lines"] = len(exported.lines)
        return facts
    facts["file_lines"] = await export_ratings(database_url, out)
    by_id = {r["id"]: r for r in records(out.read_text(encoding="utf-8").splitlines())}
    sent = records(exported.lines)
    facts["bot_lines_matching_file"] = sum(by_id.get(r["id"]) == r for r in sent)
    return facts


def tune_votes(ratings: Path, out: Path, args: Any) -> Any:
    from generation.tune import TuneConfig, tune
    from generation.tune.train import TrainSettings

    config = TuneConfig(
        base=args.base,
        data=args.data,
        corpus=args.corpus,
        judge=not args.no_judge,
        train=TrainSettings(minutes=args.tune_minutes, epochs=args.epochs, lr=args.lr),
        bpc_limit=args.bpc_limit,
        max_bpc_increase=args.max_bpc_increase,
    )
    return tune(ratings, out, config, force=True, command="bench.feedback_loop")


def missing_inputs(args: Any) -> list[str]:
    """What the tuning step will need, checked before the users spend minutes voting."""
    needed = [args.base / "config.json", args.data / "test.jsonl"]
    missing = [str(path) for path in needed if not path.is_file()]
    if not args.no_judge and not args.corpus.is_dir():
        missing.append(f"{args.corpus} (the joke corpus, for the judge; or --no-judge)")
    return missing


def tune_figures(result: Any) -> dict[str, Any]:
    data = result.as_dict()
    keep = ("version", "judge_version", "judge_error", "train_pairs", "heldout_pairs", "steps")
    figures = {k: data[k] for k in keep}
    figures |= {"train_seconds": round(result.train_seconds), "pairs": data["pairs"]}
    figures |= {"before": data["before"], "after": data["after"], "bpc_jokes": data["bpc_jokes"]}
    figures |= {"guard_failed": result.guard_failed, "bpc_change": result.bpc_change}
    return figures


# long: the whole loop in order, one step a few lines, easier to follow in one place
async def run(
    args: Any, taste: Taste | None = None, words: tuple[list[str], list[str]] | None = None
) -> dict[str, Any]:
    """The loop; `taste` and `words` default to the trained taste and the word pool."""
    from local_telegram import LocalBotApi

    if missing := missing_inputs(args):
        raise SystemExit("bench.feedback_loop: missing " + ", ".join(missing))
    workdir = args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    say = lambda text: print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)  # noqa: E731
    if taste is None:
        taste_dir = args.taste_dir or Path("runs/feedback_loop") / f"taste-{args.taste_sources}"
        folder = train_taste(args.corpus, taste_dir, sources=args.taste_sources)
        taste = Taste.load(folder, args.temperature, args.seed)
    words_a, words_b = words or word_pool(args.data / "test.jsonl", args.seed)
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}}
    report["words"] = {"phase_a": len(words_a), "phase_b": len(words_b)}
    database_url = f"sqlite+aiosqlite:///{workdir / 'jokes.db'}"
    extra = {"GPT_SAMPLE_CANDIDATES": str(args.candidates)} if args.candidates else {}
    async with LocalBotApi(token=TOKEN, callback_timeout_s=60) as api:
        say(f"phase A: {args.jokes} jokes from {args.base}, {args.users} users")
        bot = FeedbackBot(api, workdir, gpt_model=args.base, method=args.method, extra_env=extra)
        first, stats_a, exported = await phase(api, bot, taste, words_a, args, args.jokes)
        report["phase_a"] = round_facts(first, stats_a)
        say(f"phase A done: {report['phase_a']['ratio']}")
        ratings = workdir / "ratings.jsonl"
        report["export"] = await write_ratings(exported, database_url, ratings)
        say(f"export: {report['export']}; tuning for {args.tune_minutes} min")
        tuned = tune_votes(ratings, workdir / "gpt-tuned", args)
        report["tune"] = tune_figures(tuned)
        if not tuned.written:
            raise RuntimeError("the tuned model was not written: " + "; ".join(tuned.messages))
        experiment = f"{args.method}:{args.base},{tuned.out}"
        say(f"phase B: {args.jokes_b} jokes, EXPERIMENT={experiment}")
        bot = FeedbackBot(
            api, workdir, gpt_model=args.base, method=args.method, experiment=experiment,
            extra_env=extra,
        )  # fmt: skip
        second, stats_b, _ = await phase(api, bot, taste, words_b, args, args.jokes_b)
    report["phase_b"] = round_facts(second, stats_b)
    report["experiment"] = experiment
    report["arms"] = await arm_figures(database_url, args.method)
    say(f"phase B done: {report['arms']}")
    return report


def round_facts(result: Round, stats: str) -> dict[str, Any]:
    return {
        "votes": len(result.votes),
        "likes": result.likes,
        "ratio": ratio(result.likes, len(result.votes)),
        "other_replies": result.other_replies,
        "seconds": round(result.seconds),
        "jokes_per_s": round(len(result.votes) / max(result.seconds, 1e-9), 2),
        "unanswered_presses": sum(v.answer is None for v in result.votes),
        "stats_text": stats,
    }


def parser() -> Any:
    ap = bench_parser("bench.feedback_loop", __doc__)
    ap.add_argument("--jokes", type=int, default=1000, help="votes in phase A (the tuning's)")
    ap.add_argument("--jokes-b", type=int, default=5000, help="votes in phase B (both arms)")
    ap.add_argument("--users", type=int, default=24)
    ap.add_argument("--method", default="gpt-sample", choices=("gpt", "gpt-sample"))
    ap.add_argument("--candidates", type=int, default=0, help="GPT_SAMPLE_CANDIDATES (0: default)")
    ap.add_argument("--temperature", type=float, default=0.3, help="of the users' taste")
    # a share of an epoch, not a time budget, bounds the tuning: on a busy machine a 3-minute
    # budget had trained a quarter as many steps as on a quiet one
    ap.add_argument("--tune-minutes", type=float, default=20.0, help="a cap only")
    ap.add_argument("--epochs", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--max-bpc-increase", type=float, default=0.02)
    ap.add_argument("--bpc-limit", type=int, default=400, help="test jokes for bits per char")
    ap.add_argument("--no-judge", action="store_true", help="do not retrain the judge")
    ap.add_argument("--base", type=Path, default=Path("models/gpt"))
    ap.add_argument("--data", type=Path, default=Path("data/prepared"))
    ap.add_argument("--corpus", type=Path, default=Path("../shared/data/jokes"))
    ap.add_argument(
        "--taste-sources", default="gold", choices=("gold", "gold+fun"),
        help="the human-rated data (one half of it) the users' taste is trained on",
    )  # fmt: skip
    ap.add_argument("--taste-dir", type=Path, help="default: runs/feedback_loop/taste-<sources>")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", type=Path, help="default: runs/feedback_loop/<date-time>")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    args.workdir = args.workdir or Path("runs/feedback_loop") / stamp
    info = machine()
    began = time.monotonic()
    report = asyncio.run(run(args))
    report["minutes"] = round((time.monotonic() - began) / 60, 1)
    report["machine"] = machine_line(info)
    report["command"] = command_line("bench.feedback_loop", argv)
    (args.workdir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1))
    text = markdown(report)
    (args.workdir / "report.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if report["arms"]["b_wins"] else 1


__all__ = ["main", "word_pool"]


if __name__ == "__main__":
    raise SystemExit(main())
