"""A tiny `classic` index for the tests, built by the real builder into a temp folder."""

from __future__ import annotations

from pathlib import Path

from generation.classic import ClassicIndex
from generation.training.classic_index import write_index

# Four jokes match «кот»: two start with it (in two forms), two are about it.
JOKES = [
    ("t:0", "Кот пришёл домой и сел у окна."),
    ("t:1", "Кота спросили, почему он спит весь день. Он не ответил."),
    ("t:2", "Хозяйка купила коту новую миску."),
    ("t:3", "В бар заходит лошадь. Бармен молчит."),
    ("t:4", "- Доктор, у меня кот болеет.\n- Лечите кота."),
    ("t:5", "Штирлиц шёл по лесу и думал о кошке."),
]
STARTS_WITH_KOT = {"t:0", "t:1"}
ABOUT_KOT = {"t:2", "t:4"}


def build_tiny_index(folder: Path) -> ClassicIndex:
    return write_index(JOKES, folder)
