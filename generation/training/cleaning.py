"""Cleaning raw jokes into one canonical text form, the dedup key and the obscene filter.

Canonical text form (the same for every source, so the model learns one format):
- Unicode NFC, HTML entities unescaped, URLs and category headers ("Анекдоты про ...") removed,
  Latin look-alike letters inside Cyrillic words mapped back to Cyrillic, ALL-CAPS jokes
  sentence-cased.
- Every dialogue turn is on its own line and starts with ``"- "`` (ASCII hyphen; "–" and "—" at turn
  starts become "-"; spaced dashes inside a line become " - ", as the Koziev file already writes
  them). Turns glued by scraping ("?- А", "?– А") are split back. Narrative lines are joined with a
  space unless they follow a dialogue turn (then they keep their own line so they are not read as
  speech). Only single ``"\\n"`` separate lines; other whitespace runs collapse to one space.

Obscene filter: a regex over common Russian obscene roots (see ``OBSCENE_RE``); the bot is for a
general audience (the corpus report counts the records it drops per source). Roots are anchored at
word starts with an explicit prefix list where a bare substring would hit ordinary words
("страхуй", "небо", "ребята", "учебник", "погребальный", "бляха", "сукно", "мандарин").
"""

from __future__ import annotations

import html
import re
import unicodedata

# Latin letters that look like Cyrillic ones. Lower-case "m", "n", "u" are not look-alikes in print.
_LOOKALIKES = str.maketrans(
    {
        "A": "А", "B": "В", "C": "С", "E": "Е", "H": "Н", "K": "К", "M": "М", "O": "О",
        "P": "Р", "T": "Т", "X": "Х", "Y": "У",
        "a": "а", "c": "с", "e": "е", "k": "к", "o": "о", "p": "р", "x": "х", "y": "у",
    }
)  # fmt: skip
_LOOKALIKE_SET = frozenset("ABCEHKMOPTXYacekopxy")
_CYR = "А-Яа-яЁё"
_WORD_RE = re.compile(r"[^\W\d_]+")
_CYR_CHAR = re.compile(f"[{_CYR}]")
_LAT_CHAR = re.compile(r"[A-Za-z]")

_URL_RE = re.compile(r"(?:https?://|www\.)\S+|\b[\w.-]+\.(?:ru|com|net|org|ua|su)(?:/\S*)?\b", re.I)
_TAG_RE = re.compile(r"<[^>\n]{1,200}>")
# A category header line such as "Анекдоты про Вовочку" or "Анекдот из жизни математиков." alone on
# a line.
_HEADER_RE = re.compile(
    r"^\s*(?:свежие\s+|лучшие\s+|новые\s+)?анекдот(?:ы|ов)?\s+(?:про|о|об|для|из|от|на)\b[^\n.!?]{0,60}[.:]?\s*(?:\n|$)",
    re.I,
)
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
# A turn start glued to the previous sentence: end punctuation (maybe with a closing quote),
# optional spaces, a dash, then a letter/quote/ellipsis (not a digit, so "10.-20" or "-5" stay).
_GLUED_TURN_RE = re.compile(rf"([.!?…:;)»\"])[ \t]*[{_DASHES}][ \t]*(?=[^\W\d_]|[«\"'(.…])")
_TURN_START_RE = re.compile(rf"^[{_DASHES}]+[ \t]*")
_SPACED_DASH_RE = re.compile(
    r"[ \t]+[\u2013\u2014\u2015\u2212][ \t]+|[ \t]+[\u2013\u2014][ \t]*(?=\S)"
)
_SPACE_BEFORE_PUNCT_RE = re.compile(r"[ \t]+([?!,;:])")
_INVISIBLE_RE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_HSPACE_RE = re.compile(r"[^\S\n]+")
# Words glued at sentence ends by scraping: "раз?Он", "сентября,новый", "сказал.Потом".
_GLUED_SENTENCE_RE = re.compile(r"(?<=[а-яё])([?!…]+|,|(?<=[а-яё]{2})\.)(?=[А-ЯЁа-яё])")


def fix_lookalikes(text: str) -> str:
    """Map Latin look-alike letters back to Cyrillic inside words that are Cyrillic.

    A word is rewritten when it has a Cyrillic letter and every Latin letter in it has a Cyrillic
    twin ("пpодавщице", "Hу"), so real Latin words ("Windows", "iPhone", "XP") stay. A Latin-only
    one-letter look-alike word ("B", "c") is mapped too when the whole text is mostly (>=80%)
    Cyrillic: scraped texts with look-alikes write the preposition "В" that way.
    """
    if not _LAT_CHAR.search(text):
        return text

    def mappable(word: str) -> bool:
        latin = [ch for ch in word if ch.isascii()]
        return bool(latin) and all(ch in _LOOKALIKE_SET for ch in latin)

    def mixed(m: re.Match[str]) -> str:
        word = m.group(0)
        return word.translate(_LOOKALIKES) if _CYR_CHAR.search(word) and mappable(word) else word

    text = _WORD_RE.sub(mixed, text)
    cyr = len(_CYR_CHAR.findall(text))
    lat = len(_LAT_CHAR.findall(text))
    if lat and cyr >= 0.8 * (cyr + lat):

        def short(m: re.Match[str]) -> str:
            word = m.group(0)
            return word.translate(_LOOKALIKES) if len(word) == 1 and mappable(word) else word

        text = _WORD_RE.sub(short, text)
    return text


def fix_shouting(text: str) -> str:
    """Sentence-case a text written mostly in capitals (some anecapi jokes are ALL CAPS)."""
    letters = [ch for ch in text if ch.isalpha()]
    if len(letters) < 20 or sum(ch.isupper() for ch in letters) < 0.7 * len(letters):
        return text
    lowered = text.lower()
    return re.sub(
        r"(^|[.!?…]\s+|\n[-\s]*)([^\W\d_])", lambda m: m.group(1) + m.group(2).upper(), lowered
    )


def _is_turn(line: str) -> bool:
    return line.startswith("- ")


def split_turns(text: str) -> str:
    """Put every dialogue turn on its own line in the canonical ``"- "`` form.

    Glued turns ("?- А", "? – А") are split; dashes at line starts become "- "; spaced long dashes
    in a line become " - ". Narrative lines are joined with a space, except after a turn.
    """
    text = _GLUED_TURN_RE.sub(lambda m: m.group(1) + "\n- ", text)
    text = _GLUED_SENTENCE_RE.sub(lambda m: m.group(1) + " ", text)
    lines: list[str] = []
    for raw in text.split("\n"):
        line = _HSPACE_RE.sub(" ", raw).strip()
        if not line:
            continue
        if line[0] in _DASHES and len(line) > 1:
            rest = _TURN_START_RE.sub("", line)
            if not rest or not (rest[0].isalpha() or rest[0] in "«\"'(.…"):
                pass  # "-5 градусов", "--" separators: not a turn
            else:
                line = "- " + rest
        line = _SPACED_DASH_RE.sub(" - ", line)
        line = _SPACE_BEFORE_PUNCT_RE.sub(r"\1", line)
        if lines and not _is_turn(line) and not _is_turn(lines[-1]):
            lines[-1] = lines[-1] + " " + line
        else:
            lines.append(line)
    return "\n".join(lines)


def clean_text(text: str) -> str:
    """Return the canonical form of one raw joke (see the module docstring); may return ""."""
    text = html.unescape(html.unescape(text))
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = _INVISIBLE_RE.sub("", text).replace("\xa0", " ").replace("\t", " ")
    text = _TAG_RE.sub(" ", text)
    text = _URL_RE.sub(" ", text)
    text = _HEADER_RE.sub("", text.lstrip())
    text = fix_lookalikes(text)
    text = fix_shouting(text)
    return split_turns(text)


def norm_key(text: str) -> str:
    """Dedup key: lower case, "ё" -> "е", letters and digits only."""
    return "".join(ch for ch in text.lower().replace("ё", "е") if ch.isalnum())


# Obscene roots. Word-start anchoring with explicit prefixes keeps "страхуй", "небо", "ребята",
# "хлеб", "учебник", "колеблется", "погребальный", "вебинар", "бляха", "сукно", "мандарин",
# "мудрый" clean.
_EB_PREFIX = (
    r"(?:за|вы|от|отъ|у|до|по|на|раз|разъ|рас|съ|об|объ|подъ|при|пере|въ|изъ|недо|про|ни|долбо)?"
)
OBSCENE_RE = re.compile(
    r"\b(?:на|по|от|ни|за|до|ох|вы|пере|без)?ху[йеёяюи]"  # хуй family
    r"|п[иеё]зд"  # пизда family (no innocent Russian word has it)
    rf"|\b{_EB_PREFIX}[её]б(?:[аиуёлнкщт]|ыр|\b)"  # ебать family
    r"|\bбля(?:д|т|\b|[ьи])"  # блядь, бля (not бляха, бляшка)
    r"|\bсук(?:а|и|е|у|ой|ам|ами|ах|ин\w*)\b"  # сука (not сук, сукно, сукровица)
    r"|\bмуд[аи](?:[кчл])"  # мудак, мудила (not мудрый)
    r"|\bп[иеэ]д[оае]р"  # пидор, пидарас
    r"|залуп|\bг[ао]ндон|шлюх|\bдроч|\bманд(?:а|ы|у|е|ой)\b",
    re.I,
)


def is_obscene(text: str) -> bool:
    return OBSCENE_RE.search(text) is not None
