"""Which engine decodes the GPT: our KV-cache loop, transformers `generate()`, or CTranslate2.

    python -m bench.engines [--quick] [--models shipped,random] [--repeats 3] [--words 12]
                            [--concurrent 32] [--threads 2] [--engines NAMES]

Every engine decodes the served presets (`generation.registry.gpt_presets`) with int8 weights:

* `own`: `GptBackend` as served (`quantize="int8"`): the KV-cache loop of
  `generation.gpt.decoding` with our row-wise int8 layers;
* `own-early` (beam only): the same with `early_stopping=True`, which stops a prompt's search
  once K hypotheses are finished, as CTranslate2's beam search does (the preset does not);
* `generate`: the same loaded model, decoded by transformers `generate()` with the served rules
  as logits processors (`bench.generate_engine`);
* `ct2`: CTranslate2 (if installed) on the same weights, converted to int8 in a temp folder. It has
  no per-step logits hook: no first-token ban, no layout tokens exempt from `no_repeat_ngram_size`,
  and one global random seed (`set_random_seed`) instead of one per row.

`single s`: one request at a time as served with best of N (a starting word with
`GPT_CANDIDATES` beams returned or `GPT_SAMPLE_CANDIDATES` seeded samples), median over the words.
`jokes/s`: `--concurrent` requests of one candidate each (different words) in one batch, as the
service's batches of at most `MAX_BATCH_SIZE` rows. Configurations are interleaved and rotated over
`--repeats`; figures are medians of the repeats. On the single requests' words, per engine:
`alone = batched` (a request's first candidate is the same in the batch: the same seed, or the best
beam), `glued` (candidates whose first new character continues the word, which `FirstTokenBan`
forbids), `valid` (candidates that pass `joke_checks` after `clean_joke`) and `same as own` (the
best beam is the own loop's). The random 125M model gives speed only. Not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import WORDS, machine, machine_line, quiet_logs, table

#: new tokens per joke for the random 125M model: the original's max_length 20 less a short prompt
RANDOM_BUDGET = 18
TASKS = ("beam", "sample")

Texts = list[list[str]]  # per request: its candidates, best first (beam) or by seed (sampling)


def load() -> float:
    return round(os.getloadavg()[0], 2)


class BackendEngine:
    """`GptBackend.generate` on the served presets: one request = a word x its candidates."""

    def __init__(
        self, backend: Any, presets: dict[str, dict[str, Any]], counts: dict[str, int],
        tasks: tuple[str, ...] = TASKS,
    ) -> None:  # fmt: skip
        self.backend = backend
        self.presets = presets
        self.counts = counts
        self.tasks = tasks

    def run(self, words: list[str], task: str, first_seed: int, n: int) -> Texts:
        """`n` candidates per word; request i's seeds are first_seed + 1000 i + (0..n-1)."""
        prompts = [word for word in words for _ in range(n)]
        if task == "beam":
            seeds: list[int | None] = [rank for _ in words for rank in range(n)]
        else:
            seeds = [first_seed + 1000 * i + k for i in range(len(words)) for k in range(n)]
        texts = self.backend.generate(prompts, self.presets[task], seeds)
        return [texts[i * n : (i + 1) * n] for i in range(len(words))]


class Ct2Engine:
    """CTranslate2's generator on the same weights (int8) and the same token budget."""

    def __init__(
        self, folder: Path, backend: Any, presets: dict[str, dict[str, Any]],
        counts: dict[str, int], scratch: Path, threads: int,
    ) -> None:  # fmt: skip
        import ctranslate2
        from ctranslate2.converters import TransformersConverter

        target = scratch / f"ct2-{folder.name}"
        TransformersConverter(str(folder)).convert(str(target), quantization="int8", force=True)
        self.ct2 = ctranslate2
        self.generator = ctranslate2.Generator(
            str(target), device="cpu", compute_type="int8", intra_threads=threads
        )
        self.backend = backend
        self.presets = presets
        self.counts = counts

    def run(self, words: list[str], task: str, first_seed: int, n: int) -> Texts:
        preset = self.presets[task]
        backend = self.backend
        prompts = [backend.encode_prompt(word) for word in words]
        tokens = [backend.tokenizer.convert_ids_to_tokens(ids) for ids in prompts]
        common = {
            "max_length": int(preset["max_new_tokens"]),
            "no_repeat_ngram_size": int(preset.get("no_repeat_ngram_size", 0)),
            "include_prompt_in_result": False,
            "end_token": list(backend.eos_ids),
        }
        if task == "beam":
            results = self.generator.generate_batch(
                tokens, beam_size=int(preset["num_beams"]), num_hypotheses=n,
                return_scores=True, **common,
            )  # fmt: skip
            sequences = [result.sequences_ids for result in results]
        else:
            self.ct2.set_random_seed(first_seed)  # one generator for the whole batch
            results = self.generator.generate_batch(
                [row for row in tokens for _ in range(n)],
                sampling_topk=int(preset.get("top_k") or 0),
                sampling_topp=float(preset["top_p"]),
                sampling_temperature=float(preset["temperature"]),
                **common,
            )
            flat = [result.sequences_ids[0] for result in results]
            sequences = [flat[i * n : (i + 1) * n] for i in range(len(words))]
        return [
            [backend.decode(ids + new) for new in found]
            for ids, found in zip(prompts, sequences, strict=True)
        ]


def build_engines(
    folder: Path, names: list[str], budget: int, scratch: Path, threads: int
) -> dict[str, Any]:
    from bench.generate_engine import GenerateBackend
    from generation.config import GenerationConfig
    from generation.gpt.backend import GptBackend
    from generation.registry import gpt_presets

    config = GenerationConfig.defaults(gpt_max_new_tokens=budget)
    presets = {"beam": gpt_presets(config)["gpt"], "sample": gpt_presets(config)["gpt-sample"]}
    counts = {"beam": config.gpt_candidates, "sample": config.gpt_sample_candidates}
    own = GptBackend.from_pretrained(folder, quantize="int8")
    own.warmup()
    engines: dict[str, Any] = {}
    if "own" in names:
        engines["own"] = BackendEngine(own, presets, counts)
    if "own-early" in names:  # beam only: stop as CTranslate2 does, when K beams are finished
        early = {**presets, "beam": {**presets["beam"], "early_stopping": True}}
        engines["own-early"] = BackendEngine(own, early, counts, tasks=("beam",))
    if "generate" in names:
        hf = GenerateBackend(own)
        hf.warmup()
        engines["generate"] = BackendEngine(hf, presets, counts)
    if "ct2" in names:
        try:
            engines["ct2"] = Ct2Engine(folder, own, presets, counts, scratch, threads)
        except ImportError:
            print("[engines] ctranslate2 is not installed: left out", file=sys.stderr)
    return engines


def time_config(engine: Any, task: str, words: list[str], crowd: list[str]) -> dict[str, Any]:
    """One repeat of one (engine, task): each of `words` alone as a request with the served
    candidates, then `crowd` as concurrent requests of one candidate each, in one batch."""
    alone: Texts = []
    latencies = []
    for index, word in enumerate(words):
        started = time.perf_counter()
        alone += engine.run([word], task, 1000 * index, engine.counts[task])
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    batched = engine.run(crowd, task, 0, 1)  # request i: the first seed it had alone
    elapsed = time.perf_counter() - started
    return {
        "single": statistics.median(latencies),
        "jokes_s": len(crowd) / elapsed,
        "alone": alone,
        "batched": batched[: len(words)],
    }


def quality(words: list[str], runs: dict[tuple[str, str], dict[str, Any]]) -> dict[Any, Any]:
    """Per (engine, task): alone = batched, glued, valid, same shown joke as own (percentages)."""
    from generation.evaluation.metrics import joke_checks
    from generation.postprocess import clean_joke, model_wrote_sentence_end

    out: dict[tuple[str, str], dict[str, float]] = {}
    for (name, task), run in runs.items():
        pairs = [(w, t) for w, texts in zip(words, run["alone"], strict=True) for t in texts]
        glued = [t[len(w) : len(w) + 1].isalnum() for w, t in pairs]
        valid = []
        for word, text in pairs:
            joke = clean_joke(text, word)
            natural = model_wrote_sentence_end(text, word)
            valid.append(bool(joke) and joke_checks(joke, word, natural_end=natural).valid)
        same = float("nan")
        if ("own", task) in runs and task == "beam":
            own = runs[("own", task)]["alone"]
            same = _share(a[0] == b[0] for a, b in zip(run["alone"], own, strict=True))
        out[(name, task)] = {
            "alone=batched": _share(
                a[0] == b[0] for a, b in zip(run["alone"], run["batched"], strict=True)
            ),
            "glued": _share(glued),
            "valid": _share(valid),
            "same": same,
        }
    return out


def _share(flags: Any) -> float:
    values = [bool(flag) for flag in flags]
    return sum(values) / len(values) if values else float("nan")


def measure_model(
    label: str, engines: dict[str, Any], words: list[str], crowd: list[str], repeats: int,
    loads: list[float],
) -> list[list[Any]]:  # fmt: skip
    """Interleave every (engine, task) over `repeats`, rotating the order; one table row each."""
    configs = [
        (name, task) for task in TASKS for name in engines
        if task in getattr(engines[name], "tasks", TASKS)
    ]  # fmt: skip
    figures: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in configs}
    for repeat in range(repeats):
        shift = repeat % len(configs)
        for name, task in configs[shift:] + configs[:shift]:
            print(f"[engines] {label}: {name} {task} (repeat {repeat + 1})", file=sys.stderr)
            figures[(name, task)].append(time_config(engines[name], task, words, crowd))
            loads.append(load())
    scores = quality(words, {c: runs[0] for c, runs in figures.items()})
    rows = []
    for config in configs:
        runs = figures[config]
        q = scores[config]
        rows.append([
            label, config[1], config[0],
            statistics.median(r["single"] for r in runs),
            statistics.median(r["jokes_s"] for r in runs),
            _percent(q["alone=batched"]), _percent(q["glued"]), _percent(q["valid"]),
            _percent(q["same"]),
        ])  # fmt: skip
    return rows


def _percent(value: float) -> str:
    return "–" if value != value else f"{value:.0%}"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.engines", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="4 words, 8 concurrent, 1 repeat")
    parser.add_argument("--models", default="shipped,random")
    parser.add_argument("--engines", default="own,own-early,generate,ct2")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--words", type=int, default=12)
    parser.add_argument("--concurrent", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if args.quick:
        args.words, args.concurrent, args.repeats = 4, 8, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    quiet_logs()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as generation.service sets it
    import torch

    from bench.models import gpt_models
    from generation.config import GenerationConfig

    torch.set_num_threads(args.threads)
    info = machine()
    words = WORDS[: args.words]
    crowd = [WORDS[i % len(WORDS)] for i in range(args.concurrent)]
    names = args.engines.split(",")
    rows: list[list[Any]] = []
    loads = [load()]
    budgets: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as tmp:
        for label, folder in gpt_models(args.models, Path(tmp)):
            shipped = GenerationConfig.defaults().gpt_max_new_tokens
            budget = shipped if "random" not in label else RANDOM_BUDGET
            budgets[label] = budget
            engines = build_engines(folder, names, budget, Path(tmp), args.threads)
            rows += measure_model(label, engines, words, crowd, args.repeats, loads)
            del engines
    report(argv, info, args, rows, loads, budgets)
    return 0


def report(
    argv: list[str] | None, info: dict[str, Any], args: argparse.Namespace,
    rows: list[list[Any]], loads: list[float], budgets: dict[str, int],
) -> None:  # fmt: skip
    command = "python -m bench.engines " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"`{command.strip()}`\n")
    print(machine_line(info, args.threads))
    print(
        f"\nLoad average (1 min) during the run: {min(loads)}–{max(loads)} "
        f"(median {statistics.median(loads)}). New tokens per joke: "
        + ", ".join(f"{label} {budget}" for label, budget in budgets.items())
        + f". {len(WORDS[: args.words])} words one request at a time; {args.concurrent} "
        f"concurrent requests in one batch; medians of {args.repeats} interleaved repeats.\n"
    )
    header = [
        "model", "preset", "engine", "single s (p50)", f"jokes/s at {args.concurrent}",
        "alone = batched", "glued", "valid", "same as own",
    ]  # fmt: skip
    print(table(header, rows))


if __name__ == "__main__":
    raise SystemExit(main())
