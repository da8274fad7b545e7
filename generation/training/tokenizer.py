"""Train the byte-level BPE tokenizer for the joke GPT.

Run: ``python -m generation.training.tokenizer --data data/prepared --out data/prepared/tokenizer
--vocab-size 12000`` (``--measure 4000,8000,12000,16000`` prints chars/token on valid for several
sizes first).

Why byte-level BPE: no unknown characters ever (emoji, Latin, odd punctuation all round-trip), and
it is what GPT-2 uses, so ``GPT2LMHeadModel`` and ``generate`` need nothing special.

Special tokens: ``<|endoftext|>`` is bos, eos and unk at once (GPT-2 convention); ``<pad>`` pads
batches. The tokenizer adds no special tokens by itself (no post-processor): a training sequence is
``<|endoftext|> joke <|endoftext|>`` and is built by the trainer, and the bot prompts with
``<|endoftext|>`` + prompt (``prompt_ids`` below, or the string ``"<|endoftext|>" + prompt``, which
parses to the same ids). Keeping the tokenizer plain makes it behave the same in every transformers
5.x.

Vocab size: 12k is the default. ``--measure`` prints characters per token on valid for several
sizes: past 12k a bigger vocabulary shortens sequences only a little, while every extra 4k tokens
cost 4k x n_embd parameters of a model that must stay under its size limit, and rare tokens get
few training examples in a corpus this small; a smaller one makes sequences noticeably longer.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

EOT = "<|endoftext|>"
PAD = "<pad>"
DEFAULT_VOCAB_SIZE = 12000


def build_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train a raw ``tokenizers`` byte-level BPE on ``texts``; ids 0 and 1 are EOT and PAD."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOT, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def wrap(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """Wrap a raw tokenizer as a transformers fast tokenizer with our special tokens."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=PAD,
        model_max_length=1024,
        clean_up_tokenization_spaces=False,
    )


def train_tokenizer(
    texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE, out_dir: str | Path | None = None
) -> PreTrainedTokenizerFast:
    """Train a tokenizer and, if ``out_dir`` is given, save it so ``AutoTokenizer`` loads it."""
    fast = wrap(build_tokenizer(texts, vocab_size))
    if out_dir is not None:
        fast.save_pretrained(str(out_dir))
    return fast


def prompt_ids(tokenizer: PreTrainedTokenizerFast, prompt: str) -> list[int]:
    """Token ids to prompt the model with: bos followed by the prompt (matches training)."""
    return [tokenizer.bos_token_id, *tokenizer.encode(prompt, add_special_tokens=False)]


def chars_per_token(tok: Tokenizer, texts: Sequence[str]) -> float:
    encs = tok.encode_batch(list(texts), add_special_tokens=False)
    return sum(len(t) for t in texts) / max(1, sum(len(e.ids) for e in encs))


def _read_texts(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line)["text"] for line in fh if line.strip()]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Train the byte-level BPE tokenizer")
    ap.add_argument("--data", type=Path, default=Path("data/prepared"))
    ap.add_argument("--out", type=Path, default=Path("data/prepared/tokenizer"))
    ap.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    ap.add_argument("--measure", default="", help="comma-separated vocab sizes to compare first")
    args = ap.parse_args(argv)
    train = _read_texts(args.data / "train.jsonl")
    valid = _read_texts(args.data / "valid.jsonl")
    for size in [int(s) for s in args.measure.split(",") if s.strip()]:
        cpt = chars_per_token(build_tokenizer(train, size), valid)
        print(f"vocab {size:>6}: {cpt:.3f} chars/token on valid")
    fast = train_tokenizer(train, args.vocab_size, args.out)
    raw = fast.backend_tokenizer
    cpt = chars_per_token(raw, valid)
    print(f"saved vocab {len(fast)} to {args.out}: {cpt:.3f} chars/token on valid")
    sample = valid[0]
    ids = fast.encode(sample, add_special_tokens=False)
    print(
        f"sample: {len(sample)} chars -> {len(ids)} tokens: {fast.convert_ids_to_tokens(ids)[:12]}"
    )
    assert fast.decode(ids) == sample, "round-trip failed"


if __name__ == "__main__":
    main()
