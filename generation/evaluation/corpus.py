"""What the evaluation reads: held-out jokes of the prepared splits and the starting words.

Starting words are the first words of held-out test jokes (what a user may type, in the corpus's
own distribution) plus common nouns a user may well type that also start jokes in the corpus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from generation.evaluation.metrics import normalize_text

#: 50 common Russian nouns a user may well type; they start jokes in the corpus too.
COMMON_NOUNS = (
    "Кот", "Собака", "Жена", "Муж", "Тёща", "Врач", "Студент", "Учитель", "Программист", "Бабушка",
    "Дедушка", "Мама", "Папа", "Сын", "Дочь", "Друг", "Сосед", "Начальник", "Водитель",
    "Полицейский", "Медведь", "Заяц", "Волк", "Рыба", "Пиво", "Водка", "Деньги", "Работа",
    "Машина", "Телефон", "Компьютер", "Интернет", "Школа", "Магазин", "Ресторан", "Больница",
    "Армия", "Театр", "Поезд", "Самолёт", "Зима", "Лето", "Утро", "Погода", "Любовь", "Свадьба",
    "Экзамен", "Зарплата", "Кошелёк", "Холодильник",
)  # fmt: skip

_FIRST_WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")


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


def mixed_words(words: Sequence[str], nouns: Sequence[str], n: int) -> list[str]:
    """n starting words, half of them nouns (when there are enough), the rest test words."""
    n_nouns = min(n // 2, len(nouns))
    return list(words[: n - n_nouns]) + list(nouns[:n_nouns])


__all__ = ["COMMON_NOUNS", "mixed_words", "read_jokes", "starting_words"]
