"""Turn the public-domain Russian literature corpus into GPT training pieces in the jokes' format.

Run: ``python -m generation.training.literature
--src ../shared/data/literature/ruslit_public_domain.tar.xz --out data/literature
[--tokenizer models/gpt]`` (``--tokenizer``: also count tokens for stats.json)

Why: the shipped GPT learned Russian only from the jokes, mostly dialogue, so its jokes are often
grammatical-looking word salad. A far larger body of prose and verse (its size is in stats.json)
teaches words, inflection and syntax; the jokes then teach the genre (see
``generation.training.mix``).

How the tar (d0rj/RusLit: ``<kind>/<Author>/<Title>.txt``, one paragraph per line, a verse line per
line) becomes pieces:
- The first line of a file (the author) and heading lines (titles, chapter numbers, "Глава первая":
  no lower-case letter, or short without a sentence end) are dropped; a heading also ends a piece,
  so no piece spans two chapters or two poems.
- Prose paragraphs are packed greedily into pieces of ``min_chars..max_chars`` characters; a longer
  paragraph is cut at sentence ends. Each piece goes through
  ``generation.training.cleaning.clean_text``, the jokes' canonical form, so a "— " speech line
  becomes a ``"- "`` turn exactly as in the jokes.
  ``max_chars`` 320 keeps a piece, at the joke tokenizer's characters per token (``--tokenizer``
  writes the token counts to stats.json), inside the 128-token context with its two
  ``<|endoftext|>`` tokens.
- Verse lines keep their line breaks (NFC and whitespace cleaned line by line), because joining
  them would make run-on prose of them.
- Dropped: pre-reform letters (ѣ, і, ѳ, ѵ: a few quotations and Ukrainian dialogue, not the
  Russian we want), pieces with more than 5 % Latin letters (Tolstoy's French), obscene ones (the
  jokes' regex), editors' translation notes ("(франц.)"), footnote marks like ``[1]``, and exact
  duplicates after ``norm_key``.
- Split by a hash of the dedup key (``generation.training.corpus.split_of``): 1 % valid, the rest
  train; the jokes' valid split stays the one that matters for the bot.
"""

from __future__ import annotations

import argparse
import json
import re
import tarfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generation.training.cleaning import clean_text, is_obscene, norm_key
from generation.training.corpus import split_of, write_jsonl

MIN_CHARS = 40
MAX_CHARS = 320
KINDS = ("prose", "poems", "publicism")
ARCHAIC_RE = re.compile("[ѣѢіІїЇѳѲѵѴ]")
FOOTNOTE_RE = re.compile(r"\[\d+\]|\{\d+\}|\*\)")
LATIN_RE = re.compile("[A-Za-z]")
LETTER_RE = re.compile(r"[^\W\d_]")
LOWER_CYR_RE = re.compile("[а-яё]")
SENTENCE_END_RE = re.compile(r"[.!?…:;»\"')]$")
# A sentence ends at . ! ? … (optionally closed by a quote or bracket) before a space and a capital.
SENTENCE_SPLIT_RE = re.compile(r"(?:(?<=[.!?…])|(?<=[.!?…][»\"')]))\s+(?=[«\"(—–-]?\s?[А-ЯЁA-Z])")
MAX_LATIN_SHARE = 0.05
# The author's words after speech ("— Куда? — спросил он."): the jokes' cleaner would read the dash
# as a new turn ("- спросил он."), so such dashes hide behind a private-use mark while it runs.
REMARK_DASH_RE = re.compile(r"([.!?…,»])[ \t]*[—–][ \t]*(?=[а-яё])")
REMARK_MARK = "\ue000"
# Editors' translations of foreign phrases ("… (франц.)") are footnotes, not the author's text.
NOTE_RE = re.compile(r"\((?:франц|фр|нем|англ|лат|итал|греч|польск)\.\)")


@dataclass
class LiteratureResult:
    splits: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    dropped: Counter[str] = field(default_factory=Counter)
    works: Counter[str] = field(default_factory=Counter)


def iter_works(src: Path) -> Iterator[tuple[str, str, str]]:
    """Yield (kind, "Author/Title", text) for every work in the tar, in archive order."""
    with tarfile.open(src) as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or not member.name.endswith(".txt") or len(parts) < 3:
                continue
            kind = parts[-3]
            if kind not in KINDS:
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            text = fh.read().decode("utf-8", errors="replace")
            yield kind, f"{parts[-2]}/{Path(parts[-1]).stem}", text


def is_heading(line: str, kind: str) -> bool:
    """Titles, author lines, chapter numbers: no lower-case letter, or (prose) short without an end.

    Verse lines are short and often end in a comma, so for poems only the no-lower-case test holds.
    """
    if not LOWER_CYR_RE.search(line):
        return True
    if kind == "poems" or line[:1] in "—–-":
        return False
    return len(line) < MIN_CHARS and not SENTENCE_END_RE.search(line)


def blocks(text: str, kind: str) -> Iterator[list[str]]:
    """Runs of body lines between headings; the first line of a file is its author and dropped."""
    block: list[str] = []
    for raw in text.splitlines()[1:]:
        line = FOOTNOTE_RE.sub("", raw).strip()
        if not line:
            continue
        if is_heading(line, kind):
            if block:
                yield block
            block = []
            continue
        block.append(line)
    if block:
        yield block


def pack(units: list[str], max_chars: int, sep: str) -> Iterator[list[str]]:
    """Greedy groups of consecutive units whose joined length stays within ``max_chars``.

    A unit longer than ``max_chars`` on its own is skipped (a rare sentence of 300+ characters).
    """
    group: list[str] = []
    size = 0
    for unit in units:
        if len(unit) > max_chars:
            if group:
                yield group
            group, size = [], 0
            continue
        extra = len(unit) + (len(sep) if group else 0)
        if group and size + extra > max_chars:
            yield group
            group, size = [], 0
            extra = len(unit)
        group.append(unit)
        size += extra
    if group:
        yield group


def paragraph_chunks(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph as is, or cut at sentence ends into chunks of at most ``max_chars``."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    sentences = SENTENCE_SPLIT_RE.split(paragraph)
    return [" ".join(group) for group in pack(sentences, max_chars, " ")]


def raw_pieces(text: str, kind: str, max_chars: int) -> Iterator[str]:
    """Uncleaned pieces of one work: verse keeps its lines, prose packs paragraph chunks."""
    for block in blocks(text, kind):
        if kind == "poems":
            units = block
        else:
            units = [c for paragraph in block for c in paragraph_chunks(paragraph, max_chars)]
        for group in pack(units, max_chars, "\n"):
            yield "\n".join(group)


def clean_piece(piece: str, kind: str) -> str:
    """The jokes' canonical form; verse line by line so its line breaks survive.

    A dash before the author's words stays inside its speech line (see ``REMARK_DASH_RE``).
    """
    if kind == "poems":
        lines = (clean_text(line) for line in piece.split("\n"))
        return "\n".join(line for line in lines if line)
    protected = REMARK_DASH_RE.sub(rf"\1 {REMARK_MARK} ", piece)
    return clean_text(protected).replace(REMARK_MARK, "-")


def drop_reason(piece: str, min_chars: int, max_chars: int) -> str:
    """Why a cleaned piece is not trained on, or "" to keep it."""
    if not min_chars <= len(piece) <= max_chars:
        return "length"
    if ARCHAIC_RE.search(piece):
        return "archaic"
    letters = len(LETTER_RE.findall(piece))
    if letters == 0 or len(LATIN_RE.findall(piece)) > MAX_LATIN_SHARE * letters:
        return "latin"
    if NOTE_RE.search(piece):
        return "note"
    if is_obscene(piece):
        return "obscene"
    return ""


def build(
    src: Path, min_chars: int = MIN_CHARS, max_chars: int = MAX_CHARS, valid_pct: int = 1
) -> LiteratureResult:
    """All kept pieces, deduplicated and split; rows are ``{"text", "source"}`` (source = kind)."""
    result = LiteratureResult(splits={"train": [], "valid": []})
    seen: set[str] = set()
    for kind, _name, text in iter_works(src):
        result.works[kind] += 1
        for raw in raw_pieces(text, kind, max_chars):
            piece = clean_piece(raw, kind)
            reason = drop_reason(piece, min_chars, max_chars)
            key = norm_key(piece)
            if not reason and key in seen:
                reason = "duplicate"
            if reason:
                result.dropped[reason] += 1
                continue
            seen.add(key)
            split = split_of(key, valid_pct=valid_pct, test_pct=0)
            result.splits[split].append({"text": piece, "source": kind})
    return result


def count_tokens(texts: list[str], tokenizer_dir: Path) -> int:
    """Tokens with our BPE, without the two ``<|endoftext|>`` each row gets in training."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    total = 0
    for start in range(0, len(texts), 4096):
        batch = tokenizer(texts[start : start + 4096], add_special_tokens=False)["input_ids"]
        total += sum(len(ids) for ids in batch)
    return total


def stats_of(result: LiteratureResult, tokenizer_dir: Path | None) -> dict[str, Any]:
    """Piece, character and (optionally) token counts per split and per kind."""
    stats: dict[str, Any] = {"works": dict(result.works), "dropped": dict(result.dropped)}
    for split, rows in result.splits.items():
        texts = [row["text"] for row in rows]
        by_kind = Counter(row["source"] for row in rows)
        entry: dict[str, Any] = {
            "pieces": len(rows),
            "chars": sum(len(t) for t in texts),
            "pieces_by_kind": dict(by_kind),
        }
        if tokenizer_dir is not None:
            entry["tokens"] = count_tokens(texts, tokenizer_dir)
            entry["chars_per_token"] = round(entry["chars"] / max(entry["tokens"], 1), 3)
        stats[split] = entry
    return stats


def write(result: LiteratureResult, out: Path, stats: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in result.splits.items():
        write_jsonl(out / f"{split}.jsonl", rows)
    (out / "stats.json").write_text(
        json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--src", type=Path, required=True, help="ruslit_public_domain.tar.xz")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--min-chars", type=int, default=MIN_CHARS)
    parser.add_argument("--max-chars", type=int, default=MAX_CHARS)
    parser.add_argument("--valid-pct", type=int, default=1)
    parser.add_argument(
        "--tokenizer", type=Path, default=None, help="count tokens with this tokenizer folder"
    )
    args = parser.parse_args(argv)
    result = build(args.src, args.min_chars, args.max_chars, args.valid_pct)
    stats = stats_of(result, args.tokenizer)
    write(result, args.out, stats)
    print(json.dumps(stats, ensure_ascii=False, indent=2))
    print(f"written to {args.out}")
    return stats


if __name__ == "__main__":
    main()
