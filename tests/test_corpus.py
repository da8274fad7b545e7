"""Cleaning, filtering, loaders and the split of the joke corpus (generation.training.corpus)."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import pytest

from generation.training import cleaning as C
from generation.training import corpus as D


def test_lookalikes_mapped_only_in_cyrillic_words() -> None:
    assert C.fix_lookalikes("пpодавщице Hу") == "продавщице Ну"
    # One-letter Latin look-alike ("B" as the preposition) in a Cyrillic text is mapped too.
    assert C.fix_lookalikes("B чeм дeлo?") == "В чем дело?"
    # Real Latin words stay, also in a Cyrillic text.
    assert C.fix_lookalikes("Купил iPhone и Windows XP") == "Купил iPhone и Windows XP"
    # A word with a Latin letter that has no Cyrillic twin is left alone.
    assert C.fix_lookalikes("Cиgма") == "Cиgма"


def test_glued_dialogue_is_split_into_canonical_turns() -> None:
    raw = "– Ты кем работаешь?– Телохранителем.– Круто! А где?– В телохранилище."
    assert C.clean_text(raw) == (
        "- Ты кем работаешь?\n- Телохранителем.\n- Круто! А где?\n- В телохранилище."
    )
    raw = "Секретарша директору: — Вы что, меня уволили? — Нет, с чего Вы взяли?"
    assert (
        C.clean_text(raw)
        == "Секретарша директору:\n- Вы что, меня уволили?\n- Нет, с чего Вы взяли?"
    )


def test_dashes_inside_a_line_and_numbers_are_not_turns() -> None:
    assert C.clean_text("Общественное мнение — это мнение тех, кого не спрашивали.") == (
        "Общественное мнение - это мнение тех, кого не спрашивали."
    )
    assert C.clean_text("На улице было. -5 градусов") == "На улице было. -5 градусов"


def test_narrative_lines_join_but_keep_line_after_a_turn() -> None:
    raw = "Умер Ленин. \nТам черт и бог.\n\n— Кто там?\nБог отвечает:\n—\u00a0Я."
    assert C.clean_text(raw) == "Умер Ленин. Там черт и бог.\n- Кто там?\nБог отвечает:\n- Я."


def test_urls_html_headers_whitespace() -> None:
    raw = "Анекдоты про Вовочку\nВовочка &laquo;пришёл&raquo;   в школу.  http://anekdoty.ru/x?y=1"
    assert C.clean_text(raw) == "Вовочка «пришёл» в школу."
    assert C.clean_text("Тест\u200b с\u00a0пробелом  www.site.com ") == "Тест с пробелом"
    assert C.clean_text("Е\u0301") == "Е\u0301"  # NFC leaves combining acute on Е alone (no form)
    assert C.clean_text("Мои\u0306 дом") == "Мой дом"  # decomposed й is composed (NFC)


def test_shouting_is_sentence_cased() -> None:
    assert C.clean_text("ЭКЗАМЕН, ПРЕПОД ЗВЕРЬ. ЗАХОДИТ ОТЛИЧНИК!") == (
        "Экзамен, препод зверь. Заходит отличник!"
    )


@pytest.mark.parametrize(
    "text",
    ["Ну и хуйня", "пиздец полный", "Отъебись от меня", "заебал", "ёб твою мать", "Блядь!",
     "Вот сука!", "Ты мудак", "выебут", "бля, опоздал"],
)  # fmt: skip
def test_obscene_words_are_caught(text: str) -> None:
    assert C.is_obscene(text)


@pytest.mark.parametrize(
    "text",
    ["Страхуй меня, когда лезу", "Я застрахую машину", "Небо голубое", "Ребята, привет",
     "Хлеб и учебник", "Он колеблется", "погребальный звон", "Вебинар", "Бляха-муха",
     "сукно и сук дерева", "мандарин", "мудрый старик", "себе", "хулиган похудел",
     "Ебола - вирус"],
)  # fmt: skip
def test_obscene_filter_false_positives(text: str) -> None:
    assert not C.is_obscene(text)


def test_norm_key_and_dedup_and_eval_exclusion() -> None:
    assert C.norm_key("- Ёжик, привет!\n- Да?") == C.norm_key("ежик привет да")
    sources = {
        "a": ["- Как дела, дружище?\n- Отлично, спасибо!", "Штирлиц шёл по лесу, думая о Родине."],
        "b": ["— как дела, дружище? — отлично, спасибо", "Колобок повесился, такие дела вот."],
    }
    eval_texts = ["Колобок повесился! Такие дела вот..."]
    res = D.prepare(sources, eval_texts)
    kept = [t for texts in res.splits.values() for t in texts]
    assert len(kept) == 2
    assert res.stats["filtered"] == {"duplicate": 1, "eval_overlap": 1}
    assert res.stats["per_source"]["b"]["duplicate"] == 1


def test_length_cut_and_obscene_counted() -> None:
    res = D.prepare(
        {"s": ["Короткий.", "Ну и хуйня тут у вас, братцы.", "х" * 300, "Нормальный анекдот тут."]}
    )
    assert res.stats["filtered"] == {"too_short": 1, "obscene": 1, "too_long": 1}


def test_split_is_deterministic_and_balanced() -> None:
    keys = [f"анекдот{i}" for i in range(5000)]
    first = [D.split_of(k) for k in keys]
    assert first == [D.split_of(k) for k in keys]
    counts = {s: first.count(s) for s in D.SPLITS}
    assert counts["train"] > 4750 and 20 < counts["valid"] < 90 and 20 < counts["test"] < 90


def _write_corpus(root: Path) -> None:
    body = (
        "- Я увольняюсь.\n- Почему?\n- Решил попробовать себя в безработице."
        "\n\n\n- Привет!\n- Пока, дорогой друг."
    )
    raw = body.encode("utf-8")
    with tarfile.open(root / D.KOZIEV_FILE, "w:xz") as tar:
        info = tarfile.TarInfo("extract_dialogues_from_anekdots.txt")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    with (root / D.HUMORNET_FILE).open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["", "tag", "text"])
        w.writerow([0, "pc", "- Привет, как интернет?- Спасибо, потихоньку..."])
        w.writerow([1, "pc", "Перед тем, как поймать ртом снежинку, убедитесь, что птицы улетели."])
    (root / D.ANECAPI_FILE).write_text(
        json.dumps({"modern_jokes": ["Штирлиц долго смотрел в одну точку. Потом в другую."],
                    "soviet_jokes": ["—\u00a0Скажите, это правда?\n—\u00a0А зачем Вам это знать?"]},
                   ensure_ascii=False), encoding="utf-8")  # fmt: skip
    with (root / D.GOLD_FILE).open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "score", "score1", "score2", "score3", "score4", "score5"])
        w.writerow(
            [
                "Перед тем как поймать ртом снежинку, убедитесь, что птицы улетели!",
                "4.4",
                4,
                5,
                5,
                3,
                5,
            ]
        )
    (root / D.FUN_FILE).write_text(
        json.dumps({"Штирлиц долго смотрел в одну точку; потом в другую": 1, "Не шутка совсем": 0},
                   ensure_ascii=False), encoding="utf-8")  # fmt: skip


def test_loaders_and_cli_on_small_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "prepared"
    corpus.mkdir()
    _write_corpus(corpus)
    assert len(list(D.load_koziev(corpus / D.KOZIEV_FILE))) == 2
    assert len(list(D.load_humornet(corpus / D.HUMORNET_FILE))) == 2
    assert len(list(D.load_anecapi(corpus / D.ANECAPI_FILE))) == 2
    D.main(["--corpus", str(corpus), "--out", str(out)])
    assert "koziev" in capsys.readouterr().out
    texts = [t for s in D.SPLITS for t in D.read_jsonl_texts(out / f"{s}.jsonl")]
    assert "- Привет, как интернет?\n- Спасибо, потихоньку..." in texts
    assert "- Скажите, это правда?\n- А зачем Вам это знать?" in texts
    assert not any("снежинку" in t or "Штирлиц" in t for t in texts)  # eval jokes excluded
    gold = [json.loads(line) for line in (out / "gold.jsonl").read_text().splitlines()]
    assert gold[0]["score"] == 4.4 and "снежинку" in gold[0]["text"]
    stats = json.loads((out / "stats.json").read_text())
    assert stats["filtered"]["eval_overlap"] == 2
    assert sum(stats["splits"].values()) == len(texts) == 4
    rows = [r for s in D.SPLITS for r in D.read_jsonl_rows(out / f"{s}.jsonl")]
    by_text = {r["text"]: r["source"] for r in rows}
    assert by_text["- Привет, как интернет?\n- Спасибо, потихоньку..."] == "humornet"
    assert {r["source"] for r in rows} <= set(D.TRAIN_SOURCES)
