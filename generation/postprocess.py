"""Turn a model's raw text into a joke fit to send: pure functions, shared by every backend.

Models stop where their token budget ends, not where a sentence does, and a random or weak model
may produce nothing useful at all. Everything here works on plain strings so that it is cheap to
test case by case and does not depend on which model produced the text.

The contract of `clean_joke`: the result begins with the user's text, ends at a sentence end (or,
when the model wrote none, at a word boundary followed by "…"), holds no special tokens, no runs of
blank lines, and is at most `max_chars` long. An empty result means "no usable joke"; callers treat
it as a generation error.
"""

from __future__ import annotations

import re
import unicodedata

#: Telegram refuses messages over 4096 characters; a joke is far shorter, so the default cap is too.
TELEGRAM_LIMIT = 4096
DEFAULT_MAX_CHARS = 1000

ELLIPSIS = "…"

# Markers that end a text: whatever follows belongs to the next training sequence.
_END_MARKERS = ("<|endoftext|>", "</s>")
# Any other special token a tokenizer might leave in when decoding without skip_special_tokens.
_SPECIAL_RE = re.compile(
    r"<\|[A-Za-z0-9_:.\-]{1,40}\|>|</?s>|<pad>|<unk>|<mask>|\[(?:PAD|UNK|CLS|SEP|MASK)\]"
)
_HORIZONTAL_SPACE_RE = re.compile(r"[^\S\n]+")
_BLANK_RUN_RE = re.compile(r"\n{3,}")
_DOUBLE_STOP_RE = re.compile(r"(?<!\.)\.\.(?!\.)")
_SPACE_BEFORE_PUNCT_RE = re.compile(r" ([,.!?;:…])(?=\s|$)")
# A sentence end: terminators, then optional closing quotes/brackets, then a space or the end.
_SENTENCE_END_RE = re.compile(r"[.!?…]+[»\"”’')\]]*(?=\s|$)")
_DIALOGUE_DASHES = "—–-"
_TRAILING_JUNK = " \t\n,;:—–-(«\"“'‘/\\"
_NO_SPACE_BEFORE = ",.!?;:…)]»"
_PAIRS = (("«", "»"), ("(", ")"))


def normalize_whitespace(text: str) -> str:
    """One line of the user's text: runs of any whitespace become one space, ends trimmed."""
    return " ".join(text.split())


def strip_special_tokens(text: str) -> str:
    """Cut at the first end-of-text marker after some content and drop other special tokens.

    A leading marker (a bos that the decoder left in) is skipped rather than treated as the end.
    Replacement characters (U+FFFD, left by a byte-level tokenizer cut inside a multi-byte letter),
    control and format characters are dropped too.
    """
    for marker in _END_MARKERS:
        pieces = text.split(marker)
        text = next((piece for piece in pieces if piece.strip()), "")
    text = _SPECIAL_RE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(
        ch
        for ch in text
        if ch == "\n" or ch == "\t" or (ch != "\ufffd" and unicodedata.category(ch)[0] != "C")
    )


def normalize_layout(text: str) -> str:
    """Collapse spaces within lines, trim every line, keep at most one blank line in a row.

    Also mends the model's doubled full stop ("остался.. Муж") and space before punctuation.
    """
    lines = [_HORIZONTAL_SPACE_RE.sub(" ", line).strip() for line in text.split("\n")]
    text = _BLANK_RUN_RE.sub("\n\n", "\n".join(lines)).strip()
    text = _DOUBLE_STOP_RE.sub(".", text)
    return _SPACE_BEFORE_PUNCT_RE.sub(r"\1", text)


_LEADING_DASH = re.compile(r"^\s*[-–—]+\s*")


def ensure_prefix(text: str, prompt: str) -> str:
    """Make the text begin with the prompt (compared case-insensitively, whitespace-normalized).

    The model is fed the prompt and echoes it, so this almost always holds already; when a backend
    returns only the continuation (or the decoder altered the prompt), the user's text is put back.
    """
    prompt = normalize_whitespace(prompt)
    if not prompt:
        return text
    if normalize_whitespace(text).casefold().startswith(prompt.casefold()):
        return text
    # A dialogue that opens with the word ("- Доктор, ...") already starts with it: drop the
    # opening dash rather than writing the word twice ("Доктор - Доктор, ...").
    undashed = _LEADING_DASH.sub("", text, count=1)
    if undashed != text and normalize_whitespace(undashed).casefold().startswith(prompt.casefold()):
        return undashed
    if not text:
        return prompt
    joiner = "" if text[0] in _NO_SPACE_BEFORE else " "
    return prompt + joiner + text


def _prompt_end(text: str, prompt: str) -> int:
    """Index in `text` right after the echoed prompt (whitespace in `text` may differ)."""
    if not prompt:
        return 0
    wanted = len(prompt.replace(" ", ""))
    seen = 0
    for index, ch in enumerate(text):
        if not ch.isspace():
            seen += 1
            if seen == wanted:
                return index + 1
    return len(text)


def has_letters(text: str) -> bool:
    return any(ch.isalpha() for ch in text)


def sentence_ends(text: str, start: int = 0) -> list[int]:
    """Positions right after each clean sentence end at or after `start`.

    A sentence end is one or more of . ! ? … with optional closing quotes or brackets, followed by
    whitespace or the end of the text ("3.14" is not one). A line break before a dialogue turn
    (a line that starts with a dash) also ends the previous turn, punctuated or not: the model
    moved on, so that turn is complete.
    """
    ends = [match.end() for match in _SENTENCE_END_RE.finditer(text, start)]
    position = text.find("\n", start)
    while position != -1:
        rest = text[position:].lstrip()
        if rest and rest[0] in _DIALOGUE_DASHES and text[:position].rstrip():
            ends.append(len(text[:position].rstrip()))
        position = text.find("\n", position + 1)
    return sorted(set(ends))


def _close_pairs(text: str) -> str:
    """Close a «quote» or (bracket) that a cut left open, so the joke does not end mid-quote."""
    for opening, closing in _PAIRS:
        missing = text.count(opening) - text.count(closing)
        if missing > 0:
            text += closing * missing
    return text


def _end_without_sentence(text: str, prompt_end: int) -> str:
    """No sentence end: drop a trailing (likely cut) word if that leaves a continuation, add "…"."""
    body = text.rstrip()
    cut = max(body.rfind(" "), body.rfind("\n"))
    if cut >= prompt_end and body and body[-1].isalnum():
        shorter = body[:cut].rstrip(_TRAILING_JUNK)
        if has_letters(shorter[prompt_end:]):
            body = shorter
    body = body.rstrip(_TRAILING_JUNK)
    if body.endswith(ELLIPSIS) or body.endswith("..."):
        return body
    return body + ELLIPSIS


# A signature the corpus sometimes carries ("… жене.© Малый Кыс"): beam search loves such
# memorised tails, and a joke sent by the bot is nobody's quotation.
_ATTRIBUTION = re.compile(r"\s*©.*\Z", re.S)


def strip_attribution(text: str) -> str:
    """Drop a trailing "© Author" signature."""
    return _ATTRIBUTION.sub("", text)


def clean_joke(raw: str, prompt: str, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """Return a clean joke built from the model's raw text, or "" if there is nothing usable.

    Steps: drop special tokens and control characters; normalise whitespace; make the text begin
    with the user's prompt; give up ("") if the continuation has no letters; cap the length; cut
    after the last sentence end that follows the prompt (keeping a dialogue's last full turn), or,
    with none, at a word boundary plus "…"; close a quote or bracket the cut left open.
    """
    max_chars = max(1, min(max_chars, TELEGRAM_LIMIT))
    prompt = normalize_whitespace(strip_special_tokens(prompt))
    text = normalize_layout(strip_special_tokens(raw))
    text = ensure_prefix(text, prompt)
    start = _prompt_end(text, prompt)
    text = text[:start] + strip_attribution(text[start:])
    if not has_letters(text[start:]):
        return ""

    # Leave room for an ellipsis and closing quotes that may be appended below.
    if len(text) > max_chars:
        text = text[: max(max_chars - 3, start)]

    ends = [end for end in sentence_ends(text, start) if has_letters(text[start:end])]
    text = text[: ends[-1]] if ends else _end_without_sentence(text, start)
    text = _close_pairs(text.rstrip())
    if len(text) > max_chars:  # only when the prompt itself is about as long as the cap
        text = text[: max_chars - 1].rstrip() + ELLIPSIS
    return text if has_letters(text[start:]) else ""


def model_wrote_sentence_end(raw: str, prompt: str) -> bool:
    """Whether the model's own text has a sentence end after the prompt, i.e. `clean_joke` cuts
    there rather than appending its "…" fallback (the same test `clean_joke` makes)."""
    prompt = normalize_whitespace(prompt)
    text = ensure_prefix(normalize_layout(strip_special_tokens(raw)), prompt)
    start = _prompt_end(text, prompt)
    text = text[:start] + strip_attribution(text[start:])
    return any(has_letters(text[start:end]) for end in sentence_ends(text, start))


__all__ = [
    "DEFAULT_MAX_CHARS",
    "ELLIPSIS",
    "TELEGRAM_LIMIT",
    "clean_joke",
    "ensure_prefix",
    "has_letters",
    "model_wrote_sentence_end",
    "normalize_layout",
    "normalize_whitespace",
    "sentence_ends",
    "strip_attribution",
    "strip_special_tokens",
]
