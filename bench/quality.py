"""Does a faster kernel change the model? Bits per character of held-out jokes per weight format.

    python -m bench.quality [--model models/gpt] [--data data/prepared] [--split test]
        [--modes none,int8,int8-fbgemm,bf16] [--limit N]

Scores `<|endoftext|> joke <|endoftext|>` of every joke in the split under the model loaded as the
bot loads it and then converted by `generation.gpt.quantize.apply_quantization`, with the scoring
code of `generation.gpt.scoring` (total -log2 p of the joke's tokens and its end token over its
characters + 1). Lower is better; a format is kept only if it stays within noise of float32.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.common import machine, machine_line, quiet_logs, table
from settings import ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality", description=__doc__)
    parser.add_argument("--model", default=str(ROOT / "models" / "gpt"))
    parser.add_argument("--data", default=str(ROOT / "data" / "prepared"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--modes", default="none,int8,int8-fbgemm,bf16")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    quiet_logs()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generation.evaluation.corpus import read_jokes
    from generation.gpt.quantize import apply_quantization
    from generation.gpt.scoring import bits_per_char, encode_jokes, lm_sequence_bits

    torch.set_num_threads(args.threads)
    info = machine()
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    texts = read_jokes(Path(args.data) / f"{args.split}.jsonl", args.limit or None)
    sequences = encode_jokes(tokenizer, texts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    rows = []
    reference = None
    for mode in args.modes.split(","):
        model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
        model = apply_quantization(model, mode)
        started = time.perf_counter()
        bpc = bits_per_char(lm_sequence_bits(model, sequences, pad_id=pad), texts)
        reference = bpc if reference is None else reference
        rows.append([mode, f"{bpc:.4f}", f"{bpc - reference:+.4f}", time.perf_counter() - started])
        print(f"[quality] {mode}: {bpc:.4f}", file=sys.stderr)
    command = "python -m bench.quality " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"`{command.strip()}`\n")
    print(machine_line(info, args.threads))
    print(f"\nModel: {args.model}; {len(texts)} jokes of {args.split}.jsonl.\n")
    print(table(["weights", "bits per character", "vs first row", "scoring s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
