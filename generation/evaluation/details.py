"""Evaluate the joke models and write docs/QUALITY-details.md (or a JSON report).

    python -m generation.evaluation.details [--data data/prepared] [--gpt models/gpt]
        [--diffuseq models/diffuseq] [--out docs/QUALITY-details.md | report.json] [--words N]
        [--quick]

What it measures (details and the reasons behind each choice are in the report it writes):

1. Bits per character of held-out jokes (test split, CleanComedy gold) under our GPT and two
   count-based baselines over the same token ids (add-k unigram, interpolated Kneser-Ney
   trigram, both tuned on valid). Bits per character does not depend on the tokenizer.
2. For starting words (first words of held-out test jokes + common nouns), each method's outputs
   as the bot sends them, produced through the real `GenerationService` one request at a time:
   the valid-joke rate (starts with the word, ends at a sentence end, no repeated word 3-gram,
   20-200 characters), distinct-1/2 and the median latency per joke.
3. Diversity across 5 samples per word (distinct-n, self-BLEU) for gpt-sample and diffuseq, and
   DiffuSeq at 2000 / 100 / 20 / 10 denoising steps.
4. Unedited sample outputs.

The markdown is generated whole; only the text between `<!-- notes:start -->` and
`<!-- notes:end -->` in an existing report is kept, so hand-written notes survive a re-run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from generation.evaluation.metrics import (
    KneserNeyTrigramLM,
    UnigramLM,
    bits_per_char,
    continues_word,
    distinct_n,
    joke_checks,
    normalize_text,
    self_bleu,
    word_doubled,
)
from generation.postprocess import (
    clean_joke,
    model_wrote_sentence_end,
)
from generation.registry import (
    DIFFUSEQ,
    GPT,
    GPT_SAMPLE,
    MethodRegistry,
    RegistryConfig,
    build_registry,
)
from generation.service import GenerationService
from generation.types import GenerationError, GenerationRequest

log = logging.getLogger("generation.evaluation.details")

#: Targets from the project brief.
TARGET_GOLD_BPC = 2.1
TARGET_GPT_VALID_RATE = 0.95
#: Reference figures (a character 7-gram modified Kneser-Ney model), for scale only.
REFERENCE_CHAR7_KN = {"gold": 2.24, "test": 1.97}

#: 50 common Russian nouns a user may well type; they start jokes in the corpus too.
COMMON_NOUNS = (
    "Кот",
    "Собака",
    "Жена",
    "Муж",
    "Тёща",
    "Врач",
    "Студент",
    "Учитель",
    "Программист",
    "Бабушка",
    "Дедушка",
    "Мама",
    "Папа",
    "Сын",
    "Дочь",
    "Друг",
    "Сосед",
    "Начальник",
    "Водитель",
    "Полицейский",
    "Медведь",
    "Заяц",
    "Волк",
    "Рыба",
    "Пиво",
    "Водка",
    "Деньги",
    "Работа",
    "Машина",
    "Телефон",
    "Компьютер",
    "Интернет",
    "Школа",
    "Магазин",
    "Ресторан",
    "Больница",
    "Армия",
    "Театр",
    "Поезд",
    "Самолёт",
    "Зима",
    "Лето",
    "Утро",
    "Погода",
    "Любовь",
    "Свадьба",
    "Экзамен",
    "Зарплата",
    "Кошелёк",
    "Холодильник",
)

STEP_SWEEP = (2000, 100, 20, 10)
NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"
_FIRST_WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def read_jokes(path: str | Path, limit: int | None = None) -> list[str]:
    """Normalised joke texts of a prepared jsonl split (empty ones skipped)."""
    out: list[str] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                text = normalize_text(json.loads(line)["text"])
                if text:
                    out.append(text)
            if limit is not None and len(out) >= limit:
                break
    return out


def starting_words(texts: Sequence[str], n: int, exclude: Sequence[str] = ()) -> list[str]:
    """The first word of each joke, in file order, unique case-insensitively, leaving out
    `exclude`; the first `n` of them. Deterministic: the test split's order is fixed."""
    seen = {word.casefold() for word in exclude}
    out: list[str] = []
    for text in texts:
        match = _FIRST_WORD_RE.search(text)
        if match is None:
            continue
        word = match.group(0)
        if word.casefold() in seen:
            continue
        seen.add(word.casefold())
        out.append(word)
        if len(out) >= n:
            break
    return out


# ---------------------------------------------------------------------------------------------
# Bits per character
# ---------------------------------------------------------------------------------------------


def encode_jokes(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """`<|endoftext|> joke <|endoftext|>` token ids, exactly as the trainer builds them."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError("the tokenizer has no end-of-text token")
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []
    return [[eos, *row, eos] for row in ids]


def context_length(model: Any) -> int:
    """How many positions the model attends to (`n_positions` or `max_position_embeddings`)."""
    return int(
        getattr(model.config, "n_positions", 0)
        or getattr(model.config, "max_position_embeddings", 1024)
    )


@torch.inference_mode()
def next_token_logits(
    model: Any, sequences: Sequence[Sequence[int]], batch_size: int = 32, pad_id: int = 0
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(rows, logits, targets, mask) for the sequences that fit the context, in length-sorted,
    right-padded batches: `logits[r, t]` predicts `targets[r, t]` (token t+1 of sequence
    `rows[r]`), `mask` marks real targets. Real tokens never attend to pads under a causal mask,
    so the padding changes no score."""
    n_pos = context_length(model)
    device = next(model.parameters()).device
    short = [i for i, seq in enumerate(sequences) if len(seq) <= n_pos]
    order = sorted(short, key=lambda i: len(sequences[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(sequences[i]) for i in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, i in enumerate(rows):
            ids[r, : len(sequences[i])] = torch.tensor(list(sequences[i]))
            mask[r, : len(sequences[i])] = True
        ids, mask = ids.to(device), mask.to(device)
        logits = model(input_ids=ids, attention_mask=mask.long()).logits.float()
        yield rows, logits[:, :-1], ids[:, 1:], mask[:, 1:]


@torch.inference_mode()
def lm_sequence_bits(
    model: Any, sequences: Sequence[Sequence[int]], batch_size: int = 32, pad_id: int = 0
) -> list[float]:
    """-log2 p of tokens 1..end of each sequence under a causal LM (token 0 is context only).

    A sequence longer than the model's context is scored in overlapping windows, each new token
    seeing at least half a window of history.
    """
    n_pos = context_length(model)
    device = next(model.parameters()).device
    bits = [0.0] * len(sequences)
    for rows, logits, targets, mask in next_token_logits(model, sequences, batch_size, pad_id):
        logp = torch.log_softmax(logits, dim=-1)
        target = logp.gather(-1, targets[..., None]).squeeze(-1)
        total = -(target * mask).sum(1) / np.log(2)
        for r, i in enumerate(rows):
            bits[i] = float(total[r])
    for i, seq in enumerate(sequences):
        if len(seq) > n_pos:
            bits[i] = _windowed_bits(model, list(seq), n_pos, device)
    return bits


def _windowed_bits(model: Any, seq: list[int], n_pos: int, device: torch.device) -> float:
    stride = n_pos // 2
    total, scored = 0.0, 1  # position of the next token to score
    begin = 0
    while scored < len(seq):
        window = seq[begin : begin + n_pos]
        logits = model(input_ids=torch.tensor([window], device=device)).logits.float()[0]
        logp = torch.log_softmax(logits[:-1], dim=-1)
        for pos in range(max(scored, begin + 1), begin + len(window)):
            total -= float(logp[pos - begin - 1, seq[pos]]) / np.log(2)
        scored = begin + len(window)
        begin += stride
    return total


@dataclass
class BpcResult:
    """Bits per character per model and set, plus what the baselines were tuned to."""

    bpc: dict[str, dict[str, float]]  # model -> set -> bpc
    jokes: dict[str, int]
    chars: dict[str, int]
    tokens: dict[str, int]
    unigram_k: float
    kn_discounts: tuple[float, float, float]
    seconds: float


def tune_unigram(
    train: Sequence[Sequence[int]],
    valid: Sequence[Sequence[int]],
    vocab: int,
    valid_texts: Sequence[str],
) -> UnigramLM:
    lm = UnigramLM(train, vocab)
    best = None
    for k in (0.001, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0):
        lm.k = k
        score = bits_per_char([lm.sequence_bits(s) for s in valid], valid_texts)
        if best is None or score < best[0]:
            best = (score, k)
    lm.k = best[1] if best else 1.0
    return lm


def tune_kneser_ney(
    train: Sequence[Sequence[int]],
    valid: Sequence[Sequence[int]],
    vocab: int,
    valid_texts: Sequence[str],
) -> KneserNeyTrigramLM:
    """Coordinate search of the three discounts on valid (two sweeps over a 0.05 grid)."""
    lm = KneserNeyTrigramLM(train, vocab)
    grid = [round(x, 2) for x in np.arange(0.3, 1.0001, 0.05)]
    discounts = list(lm.discounts)

    def score(ds: Sequence[float]) -> float:
        lm.discounts = (ds[0], ds[1], ds[2])
        return bits_per_char(lm.corpus_bits(valid), valid_texts)

    for _ in range(2):
        for order in (0, 1, 2):
            trials = []
            for value in grid:
                ds = list(discounts)
                ds[order] = value
                trials.append((score(ds), value))
            discounts[order] = min(trials)[1]
    lm.discounts = (discounts[0], discounts[1], discounts[2])
    return lm


def evaluate_bpc(
    models: Mapping[str, Any], tokenizer: Any, data: Path, limit: int | None = None
) -> BpcResult:
    """Bits per character of test and gold under each of `models` (name -> causal LM, all on
    `tokenizer`) and the two count-based baselines fitted on train and tuned on valid."""
    started = time.perf_counter()
    vocab = len(tokenizer)
    texts = {name: read_jokes(data / f"{name}.jsonl", limit) for name in ("test", "gold")}
    valid_texts = read_jokes(data / "valid.jsonl")
    train_texts = read_jokes(data / "train.jsonl")
    seqs = {name: encode_jokes(tokenizer, t) for name, t in texts.items()}
    valid = encode_jokes(tokenizer, valid_texts)
    train = encode_jokes(tokenizer, train_texts)
    log.info("bpc: %d train jokes, vocab %d; tuning baselines on valid", len(train), vocab)
    unigram = tune_unigram(train, valid, vocab, valid_texts)
    trigram = tune_kneser_ney(train, valid, vocab, valid_texts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    result: dict[str, dict[str, float]] = {name: {} for name in models}
    result.update({"trigram-kn": {}, "unigram": {}})
    for name, s in seqs.items():
        log.info("bpc: scoring %d %s jokes", len(s), name)
        for model_name, model in models.items():
            bits = lm_sequence_bits(model, s, pad_id=pad)
            result[model_name][name] = bits_per_char(bits, texts[name])
        result["trigram-kn"][name] = bits_per_char(trigram.corpus_bits(s), texts[name])
        result["unigram"][name] = bits_per_char([unigram.sequence_bits(x) for x in s], texts[name])
    return BpcResult(
        bpc=result,
        jokes={name: len(t) for name, t in texts.items()},
        chars={name: sum(len(x) for x in t) for name, t in texts.items()},
        tokens={name: sum(len(x) - 1 for x in s) for name, s in seqs.items()},
        unigram_k=unigram.k,
        kn_discounts=trigram.discounts,
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------------


@dataclass
class Output:
    """One generated joke as the user gets it, with what is known about how it was made."""

    word: str
    text: str  # "" when the service produced no usable joke
    raw: str
    latency_ms: float
    seed: int
    model_started: bool | None = None  # DiffuSeq: the model wrote the starting word itself
    natural_end: bool = True

    def checks(self) -> dict[str, bool]:
        c = joke_checks(self.text, self.word, self.natural_end)
        return {**asdict(c), "valid": c.valid}


class RecordingBackend:
    """Wraps a loaded backend and keeps the raw text of every row it generated (and DiffuSeq's
    `model_started` flag), keyed by (prompt, seed), so the evaluation sees what the service
    post-processed."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.rows: dict[tuple[str, int | None], tuple[str, bool | None]] = {}

    def generate(
        self, prompts: Sequence[str], params: Mapping[str, Any], seeds: Sequence[int | None]
    ) -> list[str]:
        if hasattr(self.inner, "generate_detailed"):
            samples = self.inner.generate_detailed(prompts, params, seeds)
            rows = [(s.text, s.model_started) for s in samples]
        else:
            rows = [(raw, None) for raw in self.inner.generate(prompts, params, seeds)]
        for prompt, seed, row in zip(prompts, seeds, rows, strict=True):
            self.rows[(prompt, seed)] = row
        return [raw for raw, _ in rows]

    def warmup(self) -> None:
        self.inner.warmup()


def recording_registry(
    source: MethodRegistry, methods: Sequence[str]
) -> tuple[MethodRegistry, dict[str, RecordingBackend]]:
    """A registry with the same methods and presets whose (already loaded) backends record."""
    registry = MethodRegistry()
    recorders: dict[str, RecordingBackend] = {}
    for name in methods:
        method = source.method(name)
        if method.backend_key not in recorders:
            recorders[method.backend_key] = RecordingBackend(source.backend(name))
            registry.add_backend(method.backend_key, recorders[method.backend_key])
        registry.add_method(
            name,
            method.display_name,
            method.backend_key,
            method.params,
            deterministic=method.deterministic,
        )
    return registry, recorders


async def generate_through_service(
    registry: MethodRegistry,
    method: str,
    words: Sequence[str],
    recorder: RecordingBackend,
    seeds: Sequence[int],
    threads: int | None,
    *,
    concurrent: bool,
) -> list[Output]:
    """One request (count 1) per word through a `GenerationService`.

    concurrent=False: one request at a time, so `latency_ms` is what a single user waits for
    one joke (empty queue, batch of one). concurrent=True: all requests at once, so the service
    batches them as it would under load (up to 32 rows per backend call); the texts are the same
    (every backend's rows are independent of their batch-mates), the latencies include queueing
    and are not reported. Sampling methods get the word's seed from `seeds`; beam search
    (deterministic) gets no seed, i.e. its best beam, as a user's first request does.
    """
    service = GenerationService(
        registry,
        queue_depth=len(words) + 1,
        timeout_s=3600,
        batch_window_ms=5 if concurrent else 0,
        max_batch_size=32,
        torch_threads=threads,
        preload=[method],
    )
    deterministic = registry.method(method).deterministic
    requests = [
        GenerationRequest(prompt=word, method=method, count=1, seed=None if deterministic else seed)
        for word, seed in zip(words, seeds, strict=True)
    ]

    async def one(request: GenerationRequest) -> tuple[str, float]:
        started = time.monotonic()
        try:
            jokes = await service.generate(request)
            return jokes[0].text, jokes[0].latency_ms
        except GenerationError as error:
            log.info("%s %r: %s", method, request.prompt, error)
            return "", (time.monotonic() - started) * 1000

    await service.start()
    try:
        if concurrent:
            results = await asyncio.gather(*(one(r) for r in requests))
        else:
            results = [await one(r) for r in requests]
    finally:
        await service.stop()
    outputs = []
    for request, (text, latency) in zip(requests, results, strict=True):
        row_seed = 0 if deterministic else request.seed
        raw, started_flag = recorder.rows.get((request.prompt, row_seed), ("", None))
        outputs.append(
            Output(
                word=request.prompt,
                text=text,
                raw=raw,
                latency_ms=latency,
                seed=row_seed or 0,
                model_started=started_flag,
                natural_end=bool(text) and model_wrote_sentence_end(raw, request.prompt),
            )
        )
    return outputs


def summarize(
    outputs: Sequence[Output], fluency: Callable[[Sequence[str]], float] | None = None
) -> dict[str, Any]:
    """The table row of a set of outputs."""
    checks = [o.checks() for o in outputs]
    n = len(outputs)

    def rate(key: str) -> float:
        return sum(c[key] for c in checks) / n if n else 0.0

    texts = [o.text for o in outputs if o.text]
    started = [o.model_started for o in outputs if o.model_started is not None]
    row: dict[str, Any] = {
        "n": n,
        "valid": rate("valid"),
        "starts": rate("starts"),
        "ends": rate("ends"),
        "no_repeat": rate("no_repeat"),
        "length_ok": rate("length_ok"),
        "empty": sum(1 for o in outputs if not o.text) / n if n else 0.0,
        "continues_word": sum(continues_word(o.text, o.word) for o in outputs) / n if n else 0.0,
        "word_doubled": sum(word_doubled(o.text, o.word) for o in outputs) / n if n else 0.0,
        "ellipsis_fallback": sum(1 for o in outputs if o.text and not o.natural_end) / n
        if n
        else 0.0,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "mean_chars": statistics.fmean(len(t) for t in texts) if texts else 0.0,
        "median_latency_ms": statistics.median(o.latency_ms for o in outputs) if n else 0.0,
        "model_started": sum(started) / len(started) if started else None,
    }
    if fluency is not None:
        row["fluency_bpc"] = fluency(texts)
    return row


def batched_samples(
    backend: Any,
    params: Mapping[str, Any],
    words: Sequence[str],
    per_word: int,
    seed: int,
    batch_rows: int = 40,
) -> tuple[list[list[Output]], float]:
    """`per_word` samples for each word straight from the backend in batches (throughput mode),
    post-processed like the service does. Returns the groups and the seconds per joke."""
    # Every row its own seed: rows sharing one would start from the same noise.
    rows = [(w, seed + i * per_word + j) for i, w in enumerate(words) for j in range(per_word)]
    outputs: list[Output] = []
    started = time.perf_counter()
    for start in range(0, len(rows), batch_rows):
        chunk = rows[start : start + batch_rows]
        prompts, seeds = [w for w, _ in chunk], [s for _, s in chunk]
        if hasattr(backend, "generate_detailed"):
            samples = backend.generate_detailed(prompts, params, seeds)
            raws = [(s.text, s.model_started) for s in samples]
        else:
            raws = [(r, None) for r in backend.generate(prompts, params, seeds)]
        for (word, s), (raw, flag) in zip(chunk, raws, strict=True):
            text = clean_joke(raw, word)
            outputs.append(
                Output(
                    word=word,
                    text=text,
                    raw=raw,
                    latency_ms=0.0,
                    seed=s,
                    model_started=flag,
                    natural_end=bool(text) and model_wrote_sentence_end(raw, word),
                )
            )
    per_joke = (time.perf_counter() - started) / max(len(rows), 1)
    groups = [outputs[i * per_word : (i + 1) * per_word] for i in range(len(words))]
    return groups, per_joke


def single_calls(
    backend: Any, params: Mapping[str, Any], words: Sequence[str], seed: int
) -> list[Output]:
    """Each word as its own backend call (batch of one): the latency one user would see."""
    outputs = []
    for index, word in enumerate(words):
        started = time.perf_counter()
        sample = backend.generate_detailed([word], params, [seed + index])[0]
        latency = (time.perf_counter() - started) * 1000
        text = clean_joke(sample.text, word)
        outputs.append(
            Output(
                word=word,
                text=text,
                raw=sample.text,
                latency_ms=latency,
                seed=seed + index,
                model_started=sample.model_started,
                natural_end=bool(text) and model_wrote_sentence_end(sample.text, word),
            )
        )
    return outputs


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    data: Path = Path("data/prepared")
    gpt: Path = Path("models/gpt")
    diffuseq: Path | None = Path("models/diffuseq")
    words: int = 200
    nouns: int = len(COMMON_NOUNS)
    latency_words: int = 20
    diversity_words: int = 30
    samples_per_word: int = 5
    sweep_words: int = 20
    full_steps_words: int = 2
    sweep_latency_words: int = 3
    steps: tuple[int, ...] = STEP_SWEEP
    bpc_limit: int | None = None
    threads: int = 2
    seed: int = 1000
    quick: bool = False
    methods: tuple[str, ...] = (GPT, GPT_SAMPLE, DIFFUSEQ)
    compare_samplers: tuple[str, ...] = ("renoise", "dpm")
    gpt_quantize: str | None = None  # None: the registry's default (what the bot uses)
    gpt_decoder: str | None = None
    diffuseq_sampler: str | None = None
    diffuseq_steps: int | None = None

    @classmethod
    def quick_config(cls, **overrides: Any) -> EvalConfig:
        values: dict[str, Any] = {
            "words": 10,
            "nouns": 5,
            "latency_words": 4,
            "diversity_words": 4,
            "sweep_words": 4,
            "full_steps_words": 1,
            "sweep_latency_words": 1,
            "bpc_limit": 200,
            "quick": True,
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class Report:
    config: dict[str, Any]
    machine: dict[str, Any]
    bpc: dict[str, Any]
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    main: dict[str, dict[str, Any]] = field(default_factory=dict)
    diversity: dict[str, dict[str, Any]] = field(default_factory=dict)
    sweep: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    nouns: list[str] = field(default_factory=list)
    models: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    #: 1-minute load average after each stage: latencies on a shared CPU depend on it.
    load: dict[str, float] = field(default_factory=dict)


def _load() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else float("nan")


def machine_info(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg_1m_at_start": load,
    }


def model_info(folder: Path | None) -> dict[str, Any]:
    if folder is None or not folder.exists():
        return {}
    info: dict[str, Any] = {"path": str(folder)}
    weights = folder / "model.safetensors"
    if weights.exists():
        info["weights_mb"] = round(weights.stat().st_size / 2**20, 2)
    for name in ("train_summary.json", "config.json"):
        path = folder / name
        if path.exists():
            with contextlib.suppress(ValueError):
                info[name] = json.loads(path.read_text(encoding="utf-8"))
    return info


def run(cfg: EvalConfig, progress: Callable[[str], None] = print) -> Report:
    """Run every part of the evaluation and return the report (nothing is written here)."""
    started = time.perf_counter()
    torch.set_num_threads(max(1, cfg.threads))
    overrides = {
        "gpt_quantize": cfg.gpt_quantize,
        "gpt_decoder": cfg.gpt_decoder,
        "diffuseq_sampler": cfg.diffuseq_sampler,
        "diffuseq_steps": cfg.diffuseq_steps,
    }
    registry_cfg = RegistryConfig(
        **{k: v for k, v in overrides.items() if v is not None},
        gpt_model=str(cfg.gpt),
        device="cpu",
        gpt_dtype="float32",
        torch_threads=cfg.threads,
        diffuseq_model=str(cfg.diffuseq) if cfg.diffuseq else "",
        enable_diffuseq=bool(cfg.diffuseq),
    )
    source = build_registry(registry_cfg)
    methods = [m for m in cfg.methods if m in source.names()]
    source.load_all(methods)
    methods = [m for m in methods if m in source.names()]  # a failed optional backend drops out
    gpt_backend = source.backend(GPT)
    tokenizer = gpt_backend.tokenizer
    # Bits per character of the checkpoint as trained (float32), and of the weights the backend
    # serves when it quantizes them (GPT_QUANTIZE), so the cost of quantizing is visible.
    model = AutoModelForCausalLM.from_pretrained(str(cfg.gpt), dtype=torch.float32).eval()
    scored = {"gpt": model}
    quantize = str(registry_cfg.gpt_quantize or "none")
    if quantize != "none":
        scored[f"gpt-{quantize}"] = gpt_backend.model

    report = Report(
        config={k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        machine=machine_info(cfg.threads),
        bpc={},
        presets={m: dict(source.method(m).params) for m in methods},
        models={"gpt": model_info(cfg.gpt), "diffuseq": model_info(cfg.diffuseq)},
    )
    report.models["gpt"]["served"] = {
        "quantize": registry_cfg.gpt_quantize,
        "decoder": registry_cfg.gpt_decoder,
    }

    progress("bits per character ...")
    bpc = evaluate_bpc(scored, tokenizer, cfg.data, cfg.bpc_limit)
    report.bpc = asdict(bpc)
    progress(f"bpc: {json.dumps(bpc.bpc)}")

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def fluency(texts: Sequence[str]) -> float:
        texts = [normalize_text(t) for t in texts if t.strip()]
        if not texts:
            return float("nan")
        return bits_per_char(
            lm_sequence_bits(model, encode_jokes(tokenizer, texts), pad_id=pad), texts
        )

    test_texts = read_jokes(cfg.data / "test.jsonl")
    nouns = list(COMMON_NOUNS[: cfg.nouns])
    words = starting_words(test_texts, cfg.words, exclude=nouns)
    report.words, report.nouns = words, nouns
    all_words = words + nouns

    registry, recorders = recording_registry(source, methods)
    seeds = {word: cfg.seed + index for index, word in enumerate(all_words)}
    latency_words = mixed_words(words, nouns, cfg.latency_words)
    outputs: dict[str, list[Output]] = {}
    for method in methods:
        recorder = recorders[source.method(method).backend_key]
        progress(f"{method}: {len(all_words)} words through the service, batched ...")
        outputs[method] = asyncio.run(
            generate_through_service(
                registry,
                method,
                all_words,
                recorder,
                [seeds[w] for w in all_words],
                cfg.threads,
                concurrent=True,
            )
        )
        progress(f"{method}: latency, {len(latency_words)} requests one at a time ...")
        timed = asyncio.run(
            generate_through_service(
                registry,
                method,
                latency_words,
                recorder,
                [seeds[w] for w in latency_words],
                cfg.threads,
                concurrent=False,
            )
        )
        row = summarize(outputs[method], fluency)
        by_word = {o.word: o.text for o in outputs[method]}
        row["median_latency_ms"] = statistics.median(o.latency_ms for o in timed)
        row["latency_n"] = len(timed)
        row["same_text_alone_and_batched"] = sum(o.text == by_word[o.word] for o in timed) / len(
            timed
        )
        row["by_source"] = {
            "test words": summarize(outputs[method][: len(words)]),
            "common nouns": summarize(outputs[method][len(words) :]),
        }
        report.main[method] = row
        report.samples[method] = [
            {"word": o.word, "text": o.text} for o in _sample_picks(outputs[method], words, nouns)
        ]
        report.load[method] = _load()
        progress(f"{method}: valid {row['valid']:.3f}, median {row['median_latency_ms']:.0f} ms")

    # Diversity: 5 samples per word, gpt-sample vs diffuseq, straight from the backends in batches.
    div_words = mixed_words(words, nouns, cfg.diversity_words)
    for method in (m for m in (GPT_SAMPLE, DIFFUSEQ) if m in methods):
        progress(f"{method}: {cfg.samples_per_word} samples x {len(div_words)} words ...")
        groups, per_joke = batched_samples(
            source.backend(method),
            source.method(method).params,
            div_words,
            cfg.samples_per_word,
            cfg.seed + 10_000,
        )
        flat = [o for g in groups for o in g]
        row = summarize(flat, fluency)
        row["self_bleu"] = self_bleu([[o.text for o in g if o.text] for g in groups])
        row["seconds_per_joke_batched"] = per_joke
        row["words"] = len(div_words)
        report.diversity[method] = row

    if DIFFUSEQ in methods:
        sweep_words = mixed_words(words, nouns, cfg.sweep_words)
        report.sweep = step_sweep(cfg, source, sweep_words, fluency, progress)
        report.load["diffuseq sweep"] = _load()

    report.seconds = time.perf_counter() - started
    return report


def _sample_picks(
    outputs: Sequence[Output], words: Sequence[str], nouns: Sequence[str]
) -> list[Output]:
    """20 unedited outputs: the first 10 test words and the first 10 nouns (no selection)."""
    first = list(outputs[: min(10, len(words))])
    return first + list(outputs[len(words) : len(words) + 20 - len(first)])


def mixed_words(words: Sequence[str], nouns: Sequence[str], n: int) -> list[str]:
    """n starting words, half of them nouns (when there are enough), the rest test words."""
    n_nouns = min(n // 2, len(nouns))
    return list(words[: n - n_nouns]) + list(nouns[:n_nouns])


def step_sweep(
    cfg: EvalConfig,
    source: MethodRegistry,
    words: Sequence[str],
    fluency: Callable[[Sequence[str]], float],
    progress: Callable[[str], None],
) -> list[dict[str, Any]]:
    """DiffuSeq quality, throughput and single-request latency at several step counts.

    Quality: one sample per word, the words in batches, every step count on the same words and
    seeds. The longest chain (the full step count) runs on the first `full_steps_words` words
    only (it is slow on a CPU); the shorter ones are also reported on that subset, like for like.
    Latency: a single word alone (batch of one), median over `sweep_latency_words` words; for the
    longest chain it is extrapolated linearly from the next-longest (every step runs the same
    network once, so time grows linearly with steps; the batched time per joke is measured).
    """
    backend = source.backend(DIFFUSEQ)
    base = dict(source.method(DIFFUSEQ).params)
    words = list(words)
    longest = max(cfg.steps)
    shorter = sorted(s for s in cfg.steps if s != longest)
    small = min(cfg.full_steps_words, len(words)) if shorter else len(words)
    latency: dict[int, float] = {}
    for steps in shorter or [longest]:
        progress(f"diffuseq sweep: latency at {steps} steps ...")
        outs = single_calls(
            backend, {**base, "steps": steps}, words[: cfg.sweep_latency_words], cfg.seed
        )
        latency[steps] = statistics.median(o.latency_ms for o in outs)
    rows: list[dict[str, Any]] = []
    for steps in cfg.steps:
        chosen = words[:small] if steps == longest else words
        progress(f"diffuseq sweep: {steps} steps x {len(chosen)} words ...")
        groups, per_joke = batched_samples(
            backend, {**base, "steps": steps}, chosen, 1, cfg.seed, batch_rows=20
        )
        outs = [g[0] for g in groups]
        extrapolated = steps not in latency
        ms = latency[shorter[-1]] * steps / shorter[-1] if extrapolated else latency[steps]
        extra = {
            "seconds_per_joke_batched": per_joke,
            "median_latency_ms": ms,
            "latency_extrapolated": extrapolated,
        }
        sampler = base.get("sampler")
        row = {"sampler": sampler, "steps": steps}
        rows.append({**row, **summarize(outs, fluency), **extra, "words": len(outs)})
        if steps != longest and small < len(outs):
            rows.append({**row, **summarize(outs[:small], fluency), **extra, "words": small})
    rows.sort(key=lambda r: (r["words"], -r["steps"]))
    # The other samplers at the preset's step count, on the same words and seeds.
    steps = int(base.get("steps", 20))
    for sampler in (x for x in cfg.compare_samplers if x != base.get("sampler")):
        progress(f"diffuseq sweep: sampler {sampler}, {steps} steps x {len(words)} words ...")
        params = {**base, "steps": steps, "sampler": sampler}
        groups, per_joke = batched_samples(backend, params, words, 1, cfg.seed, batch_rows=20)
        outs = [g[0] for g in groups]
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "words": len(outs),
                "seconds_per_joke_batched": per_joke,
                "latency_extrapolated": False,
                **summarize(outs, fluency),
                "median_latency_ms": None,
            }
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{digits}f}"


def _ms(x: float | None) -> str:
    if x is None:
        return "–"
    return f"{x / 1000:.2f} s" if x >= 1000 else f"{x:.0f} ms"


def _table_head(*columns: str) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _latency_n(report: Report) -> int:
    return next((row.get("latency_n", 0) for row in report.main.values()), 0)


def _met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def render_markdown(report: Report, command: str, notes: str | None = None) -> str:
    bpc = report.bpc
    m = report.machine
    lines: list[str] = ["# Quality of the joke models", ""]
    lines += [
        "Generated by `python -m generation.evaluation.details`; every figure below comes from "
        "that run. "
        "Only the *Notes* section is written by hand (kept between re-runs).",
        "",
        f"- Command: `{command}`",
        f"- Date: {m['date']}; run time {report.seconds / 60:.1f} min",
        f"- Machine: {m['cpu']}, {m['cores']} cores (shared with other jobs; 1-minute load "
        f"average {_f(m.get('load_avg_1m_at_start'), 1)} at start), torch {m['torch']} on CPU, "
        f"{m['torch_threads']} torch threads, Python {m['python']}"
        + (
            "; load average after each stage: "
            + ", ".join(f"{k} {v:.1f}" for k, v in report.load.items())
            if report.load
            else ""
        ),
        f"- Models: GPT `{report.models.get('gpt', {}).get('path', '?')}`"
        + (
            f" ({report.models['gpt'].get('weights_mb')} MB; served with "
            f"GPT_QUANTIZE={report.models['gpt'].get('served', {}).get('quantize')}, "
            f"GPT_DECODER={report.models['gpt'].get('served', {}).get('decoder')})"
            if report.models.get("gpt")
            else ""
        )
        + (
            f", DiffuSeq `{report.models['diffuseq'].get('path')}` "
            f"({report.models['diffuseq'].get('weights_mb')} MB)"
            if report.models.get("diffuseq")
            else ""
        )
        + (
            " — **quick mode: small subsets, figures are indicative only**"
            if report.config.get("quick")
            else ""
        ),
        "",
    ]

    # 1. bpc
    gold = bpc["bpc"]["gpt"].get("gold", float("nan"))
    lines += [
        "## 1. Bits per character on held-out jokes",
        "",
        "Each joke is whitespace-normalised and scored from its start: the model sees "
        "`<|endoftext|>` joke `<|endoftext|>`, and the bits of every joke token and of the final "
        "`<|endoftext|>` are summed. The total over a set is divided by the sum of "
        "(characters + 1) per joke, so the figure does not depend on the tokenizer. The baselines "
        "are trained on the same train split over the same token ids: an add-k unigram model "
        f"(k = {bpc['unigram_k']} chosen on valid) and an interpolated Kneser-Ney trigram model "
        f"(discounts D1, D2, D3 = {', '.join(f'{d:.2f}' for d in bpc['kn_discounts'])} chosen on "
        "valid; uniform base distribution, so no token has zero probability).",
        "",
        "| model | test (held-out) | gold (CleanComedy) |",
        "|---|---|---|",
    ]
    names = {"gpt": "our GPT (float32, as trained)"}
    for key in bpc["bpc"]:
        if key.startswith("gpt-"):
            names[key] = f"our GPT as served ({key[4:]} weights)"
    names.update({"trigram-kn": "token 3-gram, interpolated KN", "unigram": "token unigram, add-k"})
    for key, label in names.items():
        row = bpc["bpc"][key]
        lines.append(f"| {label} | {_f(row.get('test'))} | {_f(row.get('gold'))} |")
    lines.append(
        f"| *(reference) char 7-gram, modified KN* | *{REFERENCE_CHAR7_KN['test']}* | "
        f"*{REFERENCE_CHAR7_KN['gold']}* |"
    )
    lines += [
        "",
        f"Sets: test {bpc['jokes']['test']} jokes / {bpc['chars']['test']} characters / "
        f"{bpc['tokens']['test']} predicted tokens; gold {bpc['jokes']['gold']} jokes / "
        f"{bpc['chars']['gold']} characters / {bpc['tokens']['gold']} predicted tokens. The "
        "reference row was measured outside this command on comparable held-out jokes; it is "
        "there for scale only.",
        "",
        f"Target: bpc on gold ≤ {TARGET_GOLD_BPC} — {_f(gold)}: {_met(gold <= TARGET_GOLD_BPC)}.",
        "",
    ]

    # 2. generation
    lines += [
        "## 2. Generated jokes",
        "",
        f"Starting words: {len(report.words)} first words of held-out test jokes (file order, "
        f"unique, the nouns below left out) and {len(report.nouns)} common nouns: "
        + ", ".join(report.nouns)
        + ".",
        "",
        "Each method writes one joke per word through the real `GenerationService` "
        "(`build_registry` presets, post-processing included). For the quality columns all "
        "requests are submitted at once and the service batches them (up to 32 rows per call; "
        "every backend's rows are independent of their batch-mates, so the texts are those a "
        "lone request gets). *Median latency* comes from a separate run of "
        f"{_latency_n(report)} requests (half test words, half nouns) sent one at a time: what a "
        "single user waits for one joke (empty queue, batch of one). A joke "
        "is **valid** when it (a) starts with the word as a word (*word glued on* counts the "
        'failures where the model went on with letters, "Муж" → "Мужчина …"; *word doubled* '
        'counts jokes that begin with the word twice, "Кот - Кот, …", which the checks do not '
        "reject; *model wrote the word*, DiffuSeq only: the backend did not have to prepend "
        "it), (b) ends at a sentence end the model wrote "
        '(the post-processor\'s "…" fallback for a text without one does not count), (c) has no '
        "repeated word 3-gram and (d) is 20–200 characters long. distinct-n = distinct word "
        "n-grams / all word n-grams, pooled over the outputs. *GPT bpc* is our GPT's bits per "
        "character of the outputs — a fluency proxy that favours the GPT's own methods "
        "(lower = more like the training jokes).",
        "",
        *_table_head(
            "method",
            "n",
            "valid",
            "starts",
            "word glued on",
            "word doubled",
            "model wrote the word",
            "ends",
            "no rep. 3-gram",
            "20–200 chars",
            '"…" fallback',
            "empty",
            "distinct-1",
            "distinct-2",
            "mean chars",
            "GPT bpc",
            "median latency",
        ),
    ]
    for method, row in report.main.items():
        lines.append(
            f"| {method} | {row['n']} | {_pct(row['valid'])} | {_pct(row['starts'])} | "
            f"{_pct(row['continues_word'])} | {_pct(row['word_doubled'])} | "
            f"{_pct(row.get('model_started'))} | "
            f"{_pct(row['ends'])} | {_pct(row['no_repeat'])} | "
            f"{_pct(row['length_ok'])} | "
            f"{_pct(row['ellipsis_fallback'])} | {_pct(row['empty'])} | {_f(row['distinct_1'])} | "
            f"{_f(row['distinct_2'])} | {row['mean_chars']:.0f} | {_f(row.get('fluency_bpc'))} | "
            f"{_ms(row['median_latency_ms'])} |"
        )
    lines += [
        "",
        "Valid rate by kind of starting word:",
        "",
        "| method | test words | common nouns |",
        "|---|---|---|",
    ]
    for method, row in report.main.items():
        src = row["by_source"]
        tests, nouns = src["test words"]["valid"], src["common nouns"]["valid"]
        lines.append(f"| {method} | {_pct(tests)} | {_pct(nouns)} |")
    lines += ["", "Decoding presets (from `generation.registry`):", ""]
    for method, params in report.presets.items():
        lines.append(f"- `{method}`: `{json.dumps(params, ensure_ascii=False)}`")
    gpt_row = report.main.get(GPT)
    if gpt_row:
        lines += [
            "",
            f"Target: valid-joke rate ≥ {TARGET_GPT_VALID_RATE:.0%} for `gpt` — "
            f"{_pct(gpt_row['valid'])}: {_met(gpt_row['valid'] >= TARGET_GPT_VALID_RATE)}.",
        ]
    lines.append("")

    if report.diversity:
        any_row = next(iter(report.diversity.values()))
        lines += [
            "### Diversity: several samples per word",
            "",
            f"{report.config['samples_per_word']} samples for each of {any_row['words']} words "
            "(half test words, half nouns), straight from the backend in batches of 40 rows and "
            "post-processed like the service does. self-BLEU = mean smoothed BLEU-4 of each sample "
            "against the other samples of its word (higher = the samples repeat each other). "
            "*model wrote the word* (DiffuSeq only): the joke starts with the word without the "
            "backend prepending it. Time per joke is batched throughput, not latency.",
            "",
            *_table_head(
                "method",
                "samples",
                "valid",
                "model wrote the word",
                "distinct-1",
                "distinct-2",
                "self-BLEU",
                "GPT bpc",
                "time per joke (batched)",
            ),
        ]
        for method, row in report.diversity.items():
            lines.append(
                f"| {method} | {row['n']} | {_pct(row['valid'])} | {_pct(row['model_started'])} | "
                f"{_f(row['distinct_1'])} | {_f(row['distinct_2'])} | {_f(row['self_bleu'])} | "
                f"{_f(row.get('fluency_bpc'))} | {_ms(1000 * row['seconds_per_joke_batched'])} |"
            )
        lines.append("")

    if report.sweep:
        preset = report.presets.get(DIFFUSEQ, {})
        lines += [
            "### DiffuSeq: denoising steps",
            "",
            f"Sampler `{preset.get('sampler')}`, mbr {preset.get('mbr')}. Quality: one sample "
            "per word (half test words, half nouns), same words and seeds for every step count, "
            "generated in batches of 20; *time per joke (batched)* is that batch time per joke. "
            "*Latency* is one word alone (batch of one, median of "
            f"{report.config['sweep_latency_words']} words). The full 2000-step chain is slow on "
            f"a CPU, so its quality is measured on the first {report.config['full_steps_words']} "
            "words only (the shorter chains are also shown on that same subset, like for like), "
            "and its single-joke latency is extrapolated linearly from the 100-step one (marked "
            "≈; each step runs the same network once). The last rows run the other samplers at "
            "the preset's step count on the same words and seeds (quality only).",
            "",
            *_table_head(
                "sampler",
                "steps",
                "words",
                "latency (1 joke)",
                "time per joke (batched)",
                "valid",
                "model wrote the word",
                "ends",
                "distinct-1",
                "distinct-2",
                "GPT bpc",
            ),
        ]
        for row in report.sweep:
            lines.append(
                f"| {row.get('sampler')} | {row['steps']} | {row['words']} | "
                f"{'≈ ' if row.get('latency_extrapolated') else ''}"
                f"{_ms(row['median_latency_ms'])} | "
                f"{_ms(1000 * row['seconds_per_joke_batched'])} | "
                f"{_pct(row['valid'])} | {_pct(row['model_started'])} | {_pct(row['ends'])} | "
                f"{_f(row['distinct_1'])} | {_f(row['distinct_2'])} | "
                f"{_f(row.get('fluency_bpc'))} |"
            )
        lines.append("")

    # 3. samples
    lines += [
        "## 3. Sample outputs (unedited)",
        "",
        "The first 10 test words and the first 10 nouns, in order — no selection; "
        "*(no joke)* means the service returned no usable joke.",
        "",
    ]
    for method, items in report.samples.items():
        lines += [f"### {method}", ""]
        for item in items:
            text = item["text"].replace("\n", " / ") if item["text"] else "*(no joke)*"
            lines.append(f"- **{item['word']}** → {text}")
        lines.append("")

    lines += ["## Notes", "", NOTES_START, (notes or "").strip() or "_(none yet)_", NOTES_END, ""]
    lines += ["## Test words used", "", ", ".join(report.words), ""]
    return "\n".join(lines)


def existing_notes(path: Path) -> str | None:
    if not path.exists():
        return None
    text = path.read_text(encoding="utf-8")
    start, end = text.find(NOTES_START), text.find(NOTES_END)
    if start == -1 or end == -1 or end < start:
        return None
    return text[start + len(NOTES_START) : end].strip()


def write_report(report: Report, out: Path, command: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    report.config["command"] = command
    if out.suffix == ".json":
        out.write_text(
            json.dumps(asdict(report), ensure_ascii=False, indent=1, default=str) + "\n",
            encoding="utf-8",
        )
        return
    out.write_text(render_markdown(report, command, existing_notes(out)), encoding="utf-8")
    # The raw figures, next to the markdown, for anyone who wants more digits.
    out.with_suffix(".json").write_text(
        json.dumps(asdict(report), ensure_ascii=False, indent=1, default=str) + "\n",
        encoding="utf-8",
    )


def load_report(path: Path, command: str | None = None) -> tuple[Report, str]:
    """A report saved as JSON by an earlier run, and the command that produced it."""
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in fields(Report)}
    report = Report(**{k: v for k, v in data.items() if k in known})
    default = "python -m generation.evaluation.details"
    return report, command or report.config.get("command") or default


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m generation.evaluation.details", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--data", type=Path, default=Path("data/prepared"))
    ap.add_argument("--gpt", type=Path, default=Path("models/gpt"))
    ap.add_argument("--diffuseq", type=Path, default=Path("models/diffuseq"), help="'' to skip")
    ap.add_argument(
        "--out",
        type=Path,
        default=Path("docs/QUALITY-details.md"),
        help=".md (+ .json beside it) or .json",
    )
    ap.add_argument("--words", type=int, default=None, help="starting words from test jokes (200)")
    ap.add_argument(
        "--nouns", type=int, default=None, help=f"common nouns (max {len(COMMON_NOUNS)})"
    )
    ap.add_argument(
        "--diversity-words", type=int, default=None, help="words for 5-sample diversity (100)"
    )
    ap.add_argument("--sweep-words", type=int, default=None, help="words for the step sweep (50)")
    ap.add_argument("--full-steps-words", type=int, default=None, help="words for 2000 steps (10)")
    ap.add_argument("--steps", default=None, help="comma-separated step counts (2000,100,20,10)")
    ap.add_argument("--methods", default=None, help="comma-separated (gpt,gpt-sample,diffuseq)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    ap.add_argument("--gpt-quantize", default=None, help="override GPT_QUANTIZE (int8, none, ...)")
    ap.add_argument("--gpt-decoder", default=None, help="override GPT_DECODER (fast, hf)")
    ap.add_argument("--diffuseq-sampler", default=None, help="override DIFFUSEQ_SAMPLER")
    ap.add_argument("--diffuseq-steps", type=int, default=None, help="override DIFFUSEQ_STEPS")
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="small subsets: a smoke run in minutes")
    ap.add_argument(
        "--render",
        type=Path,
        default=None,
        help="re-render --out (markdown) from a saved report JSON without running any model",
    )
    ap.add_argument("--command", default=None, help="with --render: the command of that run")
    return ap.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> EvalConfig:
    overrides: dict[str, Any] = {
        "data": args.data,
        "gpt": args.gpt,
        "diffuseq": args.diffuseq if str(args.diffuseq) not in ("", ".") else None,
        "threads": args.threads,
        "gpt_quantize": args.gpt_quantize,
        "gpt_decoder": args.gpt_decoder,
        "diffuseq_sampler": args.diffuseq_sampler,
        "diffuseq_steps": args.diffuseq_steps,
        "seed": args.seed,
    }
    for name in ("words", "nouns", "diversity_words", "sweep_words", "full_steps_words"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    if args.steps:
        overrides["steps"] = tuple(int(x) for x in args.steps.split(","))
    if args.methods:
        overrides["methods"] = tuple(x.strip() for x in args.methods.split(","))
    if "nouns" in overrides:
        overrides["nouns"] = max(0, min(overrides["nouns"], len(COMMON_NOUNS)))
    return EvalConfig.quick_config(**overrides) if args.quick else EvalConfig(**overrides)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    args = parse_args(argv)
    if args.render is not None:
        report, command = load_report(args.render, args.command)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            render_markdown(report, command, existing_notes(args.out)), encoding="utf-8"
        )
        print(f"rendered {args.out} from {args.render}")
        return 0
    cfg = config_from_args(args)
    args_text = " ".join(sys.argv[1:] if argv is None else argv)
    command = f"python -m generation.evaluation.details {args_text}"

    def progress(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    report = run(cfg, progress)
    write_report(report, args.out, command.strip())
    progress(f"wrote {args.out} in {report.seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
