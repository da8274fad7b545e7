"""The reader's checks of a generated joke (generation.checks), on real pymorphy3 look-ups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from generation.checks import CopyIndex, JokeChecker, Lexicon, Verdict
from generation.checks.copies import SHARE, WIDTH, normalize
from generation.checks.words import tokenize

SHIPPED = Path(__file__).resolve().parent.parent / "models" / "checks"

# Far from any training joke, so only the hand-made index below can match it.
TRAINING = [
    "Штирлиц шёл по лесу и вдруг увидел, что Холтофф тащит домой огромный арбуз и молчит.",
    "Короткий анекдот.",
]


@pytest.fixture(scope="module")
def checker() -> JokeChecker:
    lexicon = Lexicon(["Холтофф", "рабинович"])
    return JokeChecker(lexicon, CopyIndex.build(TRAINING))


def problems(checker: JokeChecker, text: str, prompt: str = "", **kw: bool) -> tuple[str, ...]:
    return checker.check(text, prompt or text.split()[0], **kw).problems


def test_ordinary_joke_is_clean(checker: JokeChecker) -> None:
    verdict = checker.check("Жена говорит мужу:\n- Дорогой, ты опять ёлку не купил?", "Жена")
    assert verdict == Verdict(clean=True, copied=False, problems=())
    assert verdict.ok


def test_extra_words_and_their_case_forms_are_known(checker: JokeChecker) -> None:
    assert problems(checker, "Штирлиц встретил Холтоффа. Рабиновичу было скучно.") == ()
    # "ё"/"е" and case do not matter, Latin words and numbers are not looked up.
    assert problems(checker, "Ещё раз: ЕЩЕ 5-й iPhone купил, OK?") == ()


def test_lexicon_knows_forms_of_extra_words_but_not_inventions() -> None:
    lexicon = Lexicon(["холтофф"])
    assert lexicon.is_known("холтоффа") and lexicon.is_known("Холтоффу")
    assert not lexicon.is_known("кваре")
    assert not Lexicon().is_known("холтофф")


def test_invented_word_is_unknown(checker: JokeChecker) -> None:
    verdict = checker.check("Кот пошёл в кваре и уснул.", "Кот")
    assert not verdict.clean
    assert verdict.problems == ("unknown word «кваре»",)


def test_glued_words(checker: JokeChecker) -> None:
    assert problems(checker, "Он былпрограммистом всю жизнь.", "Он") == (
        "glued words «былпрограммистом»",
    )
    assert problems(checker, "Если я вамТы скажу.", "Если") == ("glued words «вамТы»",)
    # A prefix of a free compound is not a glue: "автокредит", "неполиткорректный".
    assert problems(checker, "Он взял автокредит, это неполиткорректный шаг.", "Он") == ()
    # "не" glued to a verb is the typo a reader sees.
    assert problems(checker, "Я незнаю.", "Я") == ("glued words «незнаю»",)


@pytest.mark.parametrize(
    ("text", "doubled"),
    [("Ну я я не знаю.", "я я"), ("Я не не пойду.", "не не"), ("Кот кот пришёл.", "Кот кот")],
)
def test_doubled_words(checker: JokeChecker, text: str, doubled: str) -> None:
    assert f"doubled word «{doubled}»" in problems(checker, text)


def test_comma_doubles_of_function_words_only(checker: JokeChecker) -> None:
    assert problems(checker, "А что, я, я не знаю!", "А") == ("doubled word «я, я»",)
    # Repetition for effect is Russian: content words and emphatic particles.
    assert problems(checker, "Мама, мама, лети, лети! Да, да, нет, нет.", "Мама") == ()
    # Other punctuation between the words is not a doubling.
    assert problems(checker, "- Да!\n- Да!", "Да") == ()


def test_echo_of_the_starting_word(checker: JokeChecker) -> None:
    assert problems(checker, "Чайник - Чайникникник.", "Чайник") == (
        "echo of the starting word «Чайникникник»",
    )
    assert problems(checker, "Поздняя - Поздняяняя осень.", "Поздняя") == (
        "echo of the starting word «Поздняяняя»",
    )


def test_hyphenated_words_and_stutters(checker: JokeChecker) -> None:
    text = "Кто-то из-за двери крикнул: ой-ой, Вася-то ушёл! Ал-л-л-ло? Н-н-нет. Да-а. Нууу."
    assert problems(checker, text, "Кто-то") == ()
    assert problems(checker, "Он ушёл куда-квакса.", "Он") == ("unknown word «куда-квакса»",)
    # A censored swear word is read as the word it hides.
    assert problems(checker, "Ну ты бл*дь даёшь, на х... иди.", "Ну") == ()


def test_prompt_words_are_never_unknown(checker: JokeChecker) -> None:
    assert problems(checker, "Будте здоровы, сказал кваре.", "Будте") == ("unknown word «кваре»",)
    assert problems(checker, "Квакозябра пришла домой.", "Квакозябра") == ()
    assert problems(checker, "Ал-л-л-ло, ты где?", "Ал-л-л-ло") == ()


def test_names_mid_sentence_pass_but_not_at_a_sentence_start(checker: JokeChecker) -> None:
    assert problems(checker, "Вчера Швондер пришёл.", "Вчера") == ()
    assert problems(checker, "Вчера АЗС закрыли, ГИБДД пишет по-африкански.", "Вчера") == ()
    assert problems(checker, "Вчера пришёл. Очторожило.", "Вчера") == ("unknown word «Очторожило»",)


def test_no_sentence_end_and_broken_punctuation(checker: JokeChecker) -> None:
    verdict = checker.check("Кот пошёл домой", "Кот", ended=False)
    assert verdict.problems == ("no sentence end",)
    assert not verdict.clean
    assert problems(checker, "Кот,, ты где,?\n-?\n- Тут.", "Кот") == (
        "broken punctuation «,,»",
        "broken punctuation «,?»",
        "empty dialogue line",
    )
    # Silence and a pause written with dots are joke devices, not faults.
    assert problems(checker, "Кот, ... ну.\n- ...\n- Понятно.", "Кот") == ()


def test_copy_of_forty_characters_is_found(checker: JokeChecker) -> None:
    source = normalize(TRAINING[0])
    shared = source[7 : 7 + SHARE]
    verdict = checker.check(f"Анекдот: {shared} - вот.", "Анекдот")
    assert verdict.copied and not verdict.ok
    assert verdict.problems[-1].startswith("shares text with a training joke «")


def test_share_shorter_than_forty_characters_is_not_a_copy() -> None:
    index = CopyIndex.build(TRAINING)
    source = normalize(TRAINING[0])
    # "§" is in no training joke, so the shared run is exactly the piece between them.
    for start in range(len(source) - SHARE + 1):
        assert index.is_copied("§" + source[start : start + SHARE] + "§")
        assert not index.is_copied("§" + source[start : start + WIDTH - 1] + "§")
    # 39 shared characters that hold no whole stored window (see generation.checks.copies).
    assert not index.is_copied("§" + source[1 : 1 + SHARE - 1] + "§")


def test_copy_ignores_case_whitespace_and_yo() -> None:
    index = CopyIndex.build(TRAINING)
    text = "ШТИРЛИЦ  шел\nпо лесу и вдруг   увидел, что ХОЛТОФФ тащит"
    assert index.is_copied(text)
    assert not index.is_copied("Короткий анекдот.")  # shorter than SHARE: never a copy


def test_copy_index_round_trip_and_validation(tmp_path: Path) -> None:
    index = CopyIndex.build(TRAINING)
    index.save(tmp_path / "copies.npy")
    loaded = CopyIndex.load(tmp_path / "copies.npy")
    assert np.array_equal(loaded.hashes, index.hashes) and len(loaded) > 0
    with pytest.raises(ValueError):
        CopyIndex(np.array([3, 1], dtype=np.uint64))


def test_missing_files_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checks folder not found"):
        JokeChecker.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"extra_words\.txt"):
        JokeChecker.load(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"copies\.npy"):
        CopyIndex.load(tmp_path / "copies.npy")
    # The copy index is optional.
    (tmp_path / "extra_words.txt").write_text("холтофф\n", encoding="utf-8")
    checker = JokeChecker.load(tmp_path)
    assert not checker.has_copy_index
    assert not checker.check(TRAINING[0], "Штирлиц").copied


def test_tokens_kinds() -> None:
    kinds = {t.text: t.kind for t in tokenize("Кто-то купил iPhone за 5-й раз, вамTы бл*дь")}
    assert kinds == {
        "Кто-то": "cyrillic",
        "купил": "cyrillic",
        "iPhone": "latin",
        "за": "cyrillic",
        "5-й": "number",
        "раз": "cyrillic",
        "вамTы": "mixed",
        "бл": "censored",
        "дь": "censored",
    }


@pytest.mark.skipif(not (SHIPPED / "extra_words.txt").is_file(), reason="models/checks not built")
def test_shipped_files_judge_real_sentences() -> None:
    checker = JokeChecker.load(SHIPPED)
    assert checker.has_copy_index
    assert checker.check("Штирлиц шёл по лесу.", "Штирлиц").clean
    assert checker.check("Рабинович, вы опять за своё?", "Рабинович").clean
    assert not checker.check("Чайник… мужинистыйрешка…", "Чайник").clean
    assert not checker.check("Кот любит вопросы, когдаедите, как растут.", "Кот").clean
    stock = "Жена говорит мужу:\n- Дорогой, у нас есть две новости: хорошая и плохая."
    assert checker.check(stock, "Жена").copied
