"""Checks a starting word before any work is done, so bad input changes nothing."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from bot import texts

# Characters that render as nothing but still count as "text" for Telegram.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


@dataclass(frozen=True, slots=True)
class PromptCheck:
    prompt: str | None
    error: str | None


def clean_prompt(raw: str) -> str:
    """Normalise what the user typed: NFC, no control or format characters, single spaces."""
    text = unicodedata.normalize("NFC", raw)
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES
    )
    return " ".join(text.split())


def check_prompt(raw: str | None, *, max_chars: int, max_words: int) -> PromptCheck:
    if raw is None:
        return PromptCheck(None, texts.NOT_TEXT)
    prompt = clean_prompt(raw)
    if not prompt:
        return PromptCheck(None, texts.EMPTY_TEXT)
    if len(prompt) > max_chars or len(prompt.split()) > max_words:
        return PromptCheck(None, texts.TOO_LONG.format(max_chars=max_chars, max_words=max_words))
    if not any(ch.isalpha() for ch in prompt):
        return PromptCheck(None, texts.NO_LETTERS)
    return PromptCheck(prompt, None)
