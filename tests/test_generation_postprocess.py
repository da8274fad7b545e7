"""Post-processing: raw model text in, a joke fit to send (or "" for nothing usable) out."""

from __future__ import annotations

import pytest

from generation.postprocess import (
    ELLIPSIS,
    TELEGRAM_LIMIT,
    clean_joke,
    ensure_prefix,
    normalize_layout,
    sentence_ends,
    strip_special_tokens,
)


@pytest.mark.parametrize(
    ("raw", "prompt", "expected"),
    [
        # Already clean.
        ("Молоко убежало, а кот остался.", "Молоко", "Молоко убежало, а кот остался."),
        # A trailing fragment after the last sentence end is cut off.
        ("Молоко скисло. А кот дово", "Молоко", "Молоко скисло."),
        ("Кот спросил: где молоко? Все молч", "Кот", "Кот спросил: где молоко?"),
        ("Штирлиц шёл! И шёл... А потом", "Штирлиц", "Штирлиц шёл! И шёл..."),
        ("Штирлиц упал?! Нет, лёг", "Штирлиц", "Штирлиц упал?!"),
        ("Вовочка сказал «нет…» и ушёл к", "Вовочка", "Вовочка сказал «нет…»"),
        # Closing quotes and brackets after a terminator belong to the sentence.
        ("Кот сказал: «Молоко — это жизнь!» А пёс", "Кот", "Кот сказал: «Молоко — это жизнь!»"),
        ("Он ушёл (навсегда.) Но", "Он", "Он ушёл (навсегда.)"),
        ('Он сказал: "Всё." Потом', "Он", 'Он сказал: "Всё."'),
        # A number's decimal point is no sentence end.
        ("Пи равно 3.14 и всё", "Пи", "Пи равно 3.14 и" + ELLIPSIS),
        # A cut left a «quote» open: it is closed.
        ("Он сказал: «Привет. Как", "Он", "Он сказал: «Привет.»"),
        # Doubled full stop and space before punctuation are mended.
        ("Молоко убежало.. Муж молчит .", "Молоко", "Молоко убежало. Муж молчит."),
    ],
    ids=lambda value: str(value)[:12].encode("ascii", "backslashreplace").decode(),
)
def test_clean_joke_cases(raw: str, prompt: str, expected: str) -> None:
    assert clean_joke(raw, prompt) == expected


def test_special_tokens_removed_and_text_after_eos_dropped() -> None:
    raw = "<|endoftext|>Молоко убежало!<|endoftext|>Совсем другая шутка.<pad><pad>"
    assert clean_joke(raw, "Молоко") == "Молоко убежало!"


def test_other_special_tokens_and_control_characters_removed() -> None:
    raw = "<s>Молоко\x00 уб\ufffdежало<unk>.</s>хвост"
    assert clean_joke(raw, "Молоко") == "Молоко убежало."


def test_strip_special_tokens_skips_a_leading_marker() -> None:
    assert strip_special_tokens("<|endoftext|><|endoftext|>Шутка<|endoftext|>") == "Шутка"


def test_prompt_prepended_when_model_did_not_echo_it() -> None:
    assert clean_joke("убежало, а кот остался.", "Молоко") == "Молоко убежало, а кот остался."
    assert clean_joke(", сказал кот. Ха", "Молоко") == "Молоко, сказал кот."


def test_prompt_match_is_case_and_whitespace_insensitive() -> None:
    assert clean_joke("молоко   убежало.", "Молоко") == "молоко убежало."
    assert clean_joke("Штирлиц  шёл по лесу.", "штирлиц шёл") == "Штирлиц шёл по лесу."
    assert clean_joke("Штирлиц шёл по лесу.", "  Штирлиц \n шёл ") == "Штирлиц шёл по лесу."


def test_prompt_as_word_prefix_counts_as_echoed() -> None:
    assert clean_joke("Молоком облили кота.", "Молоко") == "Молоком облили кота."


def test_sentence_end_inside_the_prompt_does_not_count() -> None:
    # The only terminator is in the prompt: the continuation has none, so it ends with "…".
    assert clean_joke("Штирлиц. Шёл по лесу", "Штирлиц.") == "Штирлиц. Шёл по" + ELLIPSIS


def test_no_continuation_means_failure() -> None:
    assert clean_joke("Молоко", "Молоко") == ""
    assert clean_joke("Молоко.", "Молоко") == ""
    assert clean_joke("Молоко ... !!! 123", "Молоко") == ""
    assert clean_joke("", "Молоко") == ""
    assert clean_joke("<|endoftext|>", "Молоко") == ""
    assert clean_joke("\ufffd\ufffd", "Молоко") == ""


def test_no_sentence_end_cuts_the_last_word_and_adds_ellipsis() -> None:
    assert clean_joke("Кот, который ходил по", "Кот") == "Кот, который ходил" + ELLIPSIS
    # A trailing comma or dash is not left before the ellipsis.
    assert clean_joke("Кот ходил, думал —  и", "Кот") == "Кот ходил, думал" + ELLIPSIS


def test_single_word_continuation_is_kept() -> None:
    assert clean_joke("Кот ходил", "Кот") == "Кот ходил" + ELLIPSIS


def test_existing_ellipsis_is_not_doubled() -> None:
    assert clean_joke("Кот ходил,", "Кот") == "Кот ходил" + ELLIPSIS


def test_dialogue_keeps_last_full_turn() -> None:
    raw = "Штирлиц вошёл.\n— Ты кто?\n— Я врач\n— А"
    assert clean_joke(raw, "Штирлиц") == "Штирлиц вошёл.\n— Ты кто?\n— Я врач"


def test_dialogue_complete_is_untouched() -> None:
    raw = "— Доктор, я буду жить?\n— А смысл?"
    assert clean_joke(raw, "— Доктор") == raw


def test_blank_line_runs_collapse() -> None:
    raw = "Колобок повесился.\n\n\n\n\nВот так.\n   \n\nКонец."
    assert clean_joke(raw, "Колобок") == "Колобок повесился.\n\nВот так.\n\nКонец."


def test_spaces_collapse_and_lines_trim() -> None:
    assert normalize_layout("  Кот \t  сказал  \n   мяу.  ") == "Кот сказал\nмяу."


def test_cap_keeps_a_sentence_end_within_the_limit() -> None:
    raw = "Кот сказал. " + "И снова сказал. " * 200
    out = clean_joke(raw, "Кот", max_chars=100)
    assert len(out) <= 100
    assert out.endswith("сказал.")


def test_cap_without_sentence_ends_adds_ellipsis_within_limit() -> None:
    raw = "Кот " + "мяу " * 500
    out = clean_joke(raw, "Кот", max_chars=50)
    assert len(out) <= 50
    assert out.endswith(ELLIPSIS)
    assert out.startswith("Кот мяу")


def test_never_over_telegram_limit() -> None:
    raw = "Кот " + "мяу. " * 2000
    assert len(clean_joke(raw, "Кот", max_chars=10_000)) <= TELEGRAM_LIMIT


def test_ensure_prefix() -> None:
    assert ensure_prefix("и всё.", "Кот") == "Кот и всё."
    assert ensure_prefix("", "Кот") == "Кот"
    assert ensure_prefix("КОТ и всё.", "кот") == "КОТ и всё."
    # a dialogue opening with the word keeps it once, without the opening dash
    assert ensure_prefix("- Доктор, я болен.\n- Бывает.", "Доктор") == "Доктор, я болен.\n- Бывает."
    assert ensure_prefix("— Кот ушёл.", "кот") == "Кот ушёл."
    assert ensure_prefix("- Пёс ушёл.", "Кот") == "Кот - Пёс ушёл."
    assert ensure_prefix("что угодно", "") == "что угодно"


def test_sentence_ends_positions() -> None:
    text = "Раз. Два! Три"
    assert sentence_ends(text) == [4, 9]
    assert sentence_ends(text, start=5) == [9]


def test_attribution_tail_is_dropped() -> None:
    raw = "Кот, когда я был маленьким, никогда не изменял жене.© Малый Кыс"
    assert clean_joke(raw, "Кот") == "Кот, когда я был маленьким, никогда не изменял жене."
    assert clean_joke("Кот ушёл. © Пэм", "Кот") == "Кот ушёл."
