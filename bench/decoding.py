"""What each decoding choice costs, one request at a time, and what it does to the jokes.

    python -m bench.decoding [--quick] [--model models/gpt | random] [--words N] [--threads T]

For every configuration — transformers `generate` (with the served rules as logits processors,
`bench.generate_engine`) or our fast loop, float32 or int8 weights, beam
width, returned sequences, KV cache on/off, sampling — it decodes the same starting words one
request at a time and reports the median latency, and, against the reference (`generate`, float32,
10 beams, 3 returns, the original's setup):

* `same text`: how often the shown joke (best beam) is identical to the reference's;
* `bits/token`: mean -log2 p per generated token under the float32 model (lower = the model
  finds the continuation likelier; beam search optimises this);
* `valid`: jokes that start with the word, end at a sentence end the model wrote, repeat no word
  3-gram and have 20–200 characters (generation.evaluation.metrics.joke_checks), after the bot's
  cleaning.

The token budget is the shipped preset's (48 new tokens); `random` (a random-weight 125M model)
gives speed only. Not a test.
"""

from __future__ import annotations

import argparse
import copy
import functools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import WORDS, machine, machine_line, quiet_logs, table
from settings import ROOT

# name, decoder, quantize, params (beyond the common budget), use_cache
CONFIGS: list[tuple[str, str, str, dict[str, Any], bool]] = [
    ("generate, fp32, beam 10, 3 returns", "hf", "none", {"num_beams": 10, "returns": 3}, True),
    ("generate, fp32, beam 10, 1 return", "hf", "none", {"num_beams": 10}, True),
    ("generate, fp32, beam 10, no KV cache", "hf", "none", {"num_beams": 10, "returns": 3}, False),
    ("generate, fp32, beam 5", "hf", "none", {"num_beams": 5}, True),
    ("generate, fp32, beam 3", "hf", "none", {"num_beams": 3}, True),
    ("generate, fp32, greedy", "hf", "none", {"num_beams": 1}, True),
    ("generate, fp32, sampling", "hf", "none", {"do_sample": True}, True),
    ("fast loop, fp32, beam 10", "fast", "none", {"num_beams": 10}, True),
    ("fast loop, int8, beam 10", "fast", "int8", {"num_beams": 10}, True),
    ("fast loop, int8, beam 5", "fast", "int8", {"num_beams": 5}, True),
    ("fast loop, int8, beam 3", "fast", "int8", {"num_beams": 3}, True),
    ("fast loop, int8, greedy", "fast", "int8", {"num_beams": 1}, True),
    ("fast loop, fp32, sampling", "fast", "none", {"do_sample": True}, True),
    ("fast loop, int8, sampling", "fast", "int8", {"do_sample": True}, True),
]  # fmt: skip
QUICK = {0, 1, 2, 3, 4, 8, 9, 10, 13}
BUDGET = 48


def decode_hf_nocache(backend: Any, prompt: str, params: dict[str, Any]) -> str:
    """`generate` with use_cache=False (every step re-reads the whole prefix)."""
    import torch
    from transformers import GenerationConfig

    ids = torch.tensor([backend.encode_prompt(prompt)])
    config = GenerationConfig(
        do_sample=False,
        num_beams=params["num_beams"],
        num_return_sequences=params.get("returns", 1),
        no_repeat_ngram_size=2,
        max_new_tokens=BUDGET,
        eos_token_id=backend.eos_ids,
        pad_token_id=backend.pad_id,
        use_cache=False,
    )
    with torch.inference_mode():
        out = backend.model.generate(input_ids=ids, generation_config=config)
    return backend.decode(out[0].tolist())


def run_config(backend: Any, words: list[str], params: dict[str, Any], cache: bool) -> list[Any]:
    preset: dict[str, Any] = {"no_repeat_ngram_size": 2, "max_new_tokens": BUDGET}
    if params.get("do_sample"):
        preset.update(do_sample=True, temperature=0.8, top_p=0.95, top_k=0)
    else:
        preset.update(do_sample=False, num_beams=params["num_beams"])
    returns = params.get("returns", 1)
    outputs, latencies = [], []
    for index, word in enumerate(words):
        t = time.perf_counter()
        if not cache:
            text = decode_hf_nocache(backend, word, params)
        elif params.get("do_sample"):
            text = backend.generate([word], preset, [index])[0]
        else:
            # the original asked for `returns` sequences and showed the first
            texts = backend.generate([word] * returns, preset, list(range(returns)))
            text = texts[0]
        latencies.append(time.perf_counter() - t)
        outputs.append(text)
    return [outputs, latencies]


def bits_per_token(model: Any, backend: Any, words: list[str], texts: list[str]) -> float:
    """Mean -log2 p of the generated tokens under `model` (float32)."""
    import math

    import torch

    total, count = 0.0, 0
    with torch.inference_mode():
        for word, text in zip(words, texts, strict=True):
            prompt = backend.encode_prompt(word)
            full = backend.encode_prompt(text)
            if len(full) <= len(prompt) or full[: len(prompt)] != prompt:
                continue
            eos = backend.eos_ids[0]
            ids = torch.tensor([[*full, eos]])
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
            targets = ids[0, 1:]
            picked = logp.gather(1, targets[:, None])[:, 0][len(prompt) - 1 :]
            total -= float(picked.sum()) / math.log(2)
            count += picked.numel()
    return total / count if count else float("nan")


def config_row(
    name: str, params: dict[str, Any], outputs: list[str], latencies: list[float],
    words: list[str], reference: list[str], scorer: Any,
) -> list[Any]:  # fmt: skip
    """One table row; `scorer` (outputs -> bits/token) is None for the random model."""
    from generation.evaluation.metrics import joke_checks
    from generation.postprocess import clean_joke

    cleaned = [clean_joke(text, word) for text, word in zip(outputs, words, strict=True)]
    valid = [
        bool(c) and joke_checks(c, w, natural_end=not c.endswith("…")).valid
        for c, w in zip(cleaned, words, strict=True)
    ]
    same = sum(a == b for a, b in zip(outputs, reference, strict=True)) / len(words)
    speed_only = scorer is None
    return [
        name,
        statistics.median(latencies),
        max(latencies),
        "–" if speed_only or params.get("do_sample") else f"{same:.0%}",
        float("nan") if speed_only else scorer(outputs),
        "–" if speed_only else f"{sum(valid) / len(valid):.0%}",
    ]


def measure(folder: Path, words: list[str], quick: bool, speed_only: bool) -> list[list[Any]]:
    """Every configuration (the quick subset with `quick`) on the model in `folder`."""
    from bench.generate_engine import GenerateBackend
    from generation.gpt.backend import GptBackend

    base = GptBackend.from_pretrained(folder, quantize="none")
    reference_model = copy.deepcopy(base.model)
    backends = {
        ("hf", "none"): GenerateBackend(base),
        ("fast", "none"): base,
        ("fast", "int8"): GptBackend.from_pretrained(folder, quantize="int8"),
    }
    for backend in backends.values():
        backend.warmup()
    scorer = None
    if not speed_only:
        scorer = functools.partial(bits_per_token, reference_model, base, words)
    rows: list[list[Any]] = []
    reference: list[str] | None = None
    for index, (name, decoder, quantize, params, cache) in enumerate(CONFIGS):
        if quick and index not in QUICK:
            continue
        print(f"[decoding] {name}", file=sys.stderr)
        outputs, latencies = run_config(backends[(decoder, quantize)], words, params, cache)
        reference = reference or outputs
        rows.append(config_row(name, params, outputs, latencies, words, reference, scorer))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decoding", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--model", default=str(ROOT / "models" / "gpt"))
    parser.add_argument("--words", type=int, default=0, help="starting words (default 12/40)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    quiet_logs()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as generation.service sets it
    import torch

    torch.set_num_threads(args.threads)
    info = machine()
    words = WORDS[: args.words or (12 if args.quick else len(WORDS))]
    with tempfile.TemporaryDirectory(prefix="bench-dec-") as tmp:
        folder = Path(args.model)
        speed_only = args.model == "random"
        if speed_only:
            from bench.models import build_rugpt3small_like

            folder = build_rugpt3small_like(Path(tmp) / "random")
        rows = measure(folder, words, args.quick, speed_only)
    command = "python -m bench.decoding " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"`{command.strip()}`\n")
    print(machine_line(info, args.threads))
    print(f"\nModel: {args.model}; {len(words)} starting words, one request at a time.\n")
    header = ["configuration", "median s", "max s", "same text as original", "bits/token", "valid"]
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
