"""The literature loader and the mix on a tiny RusLit-shaped tar.xz made on the fly.

The real archive is large and lives outside the repo, so every rule of the loader (headings out,
speech as joke turns, verse lines kept, pre-reform and French pieces out, sentence cuts, dedup,
stable split, the row format train_gpt reads) is pinned here on a few handmade works.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from generation.training import literature, mix
from generation.training.cleaning import norm_key
from generation.training.corpus import read_jsonl_rows, split_of

LONG = " ".join(f"Это предложение номер {i} про старый дом у реки." for i in range(12))
PROSE = "\n".join(
    [
        "Антон Чехов",
        "ХАМЕЛЕОН",
        "Глава первая",
        "Через базарную площадь идет полицейский надзиратель Очумелов в новой шинели.",
        "— Так ты кусаться, окаянная? — слышит вдруг он.",
        "— Ребята, не пущай её!",
        "",
        "II",
        LONG,
        "Кругом тишина. Ни души на площади. Открытые двери лавок глядят уныло[1].",
        "III",
        "Кругом тишина. Ни души на площади. Открытые двери лавок глядят уныло.",
        "IV",
        "Онъ сказалъ: мѣсто пусто, і ничего нѣтъ тамъ, кромѣ старого забора.",
        "V",
        "Mais, mon cher, vous savez bien que je ne comprends rien, — сказала она.",
    ]
)
POEM = "\n".join(
    [
        "Александр Пушкин",
        "ОСЕНЬ",
        "Роняет лес багряный свой убор,",
        "Сребрит мороз увянувшее поле,",
        "Проглянет день как будто поневоле",
        "И скроется за край окружных гор.",
    ]
)


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


@pytest.fixture
def ruslit(tmp_path: Path) -> Path:
    path = tmp_path / "ruslit.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        _add(tar, "RusLit/README.md", "# RusLit\nNot a work.\n")
        _add(tar, "RusLit/prose/Chekhov/info.csv", "name,year\nХамелеон,1884\n")
        _add(tar, "RusLit/prose/Chekhov/Хамелеон.txt", PROSE)
        _add(tar, "RusLit/poems/Pushkin/Осень.txt", POEM)
    return path


def _texts(result: literature.LiteratureResult) -> list[str]:
    return [row["text"] for rows in result.splits.values() for row in rows]


def test_works_and_kinds(ruslit: Path) -> None:
    works = list(literature.iter_works(ruslit))
    assert [(kind, name) for kind, name, _ in works] == [
        ("prose", "Chekhov/Хамелеон"),
        ("poems", "Pushkin/Осень"),
    ]


def test_headings_dropped_and_speech_becomes_turns(ruslit: Path) -> None:
    texts = _texts(literature.build(ruslit))
    joined = "\n".join(texts)
    for heading in ("Антон Чехов", "ХАМЕЛЕОН", "Глава первая", "\nII\n", "Пушкин"):
        assert heading not in joined
    first = next(t for t in texts if t.startswith("Через базарную"))
    assert "\n- Так ты кусаться, окаянная? - слышит вдруг он.\n- Ребята, не пущай её!" in first
    assert "—" not in joined  # the jokes' canonical dash


def test_verse_keeps_lines(ruslit: Path) -> None:
    result = literature.build(ruslit)
    poems = [row for rows in result.splits.values() for row in rows if row["source"] == "poems"]
    assert [row["text"].split("\n")[0] for row in poems] == ["Роняет лес багряный свой убор,"]
    assert poems[0]["text"].count("\n") == 3


def test_long_paragraph_cut_at_sentence_ends(ruslit: Path) -> None:
    texts = _texts(literature.build(ruslit, max_chars=200))
    parts = [t for t in texts if "предложение номер" in t]
    assert len(parts) >= 3
    assert all(len(t) <= 200 and t.endswith("реки.") and t.startswith("Это") for t in parts)
    assert sum(t.count("предложение") for t in parts) == 12


def test_noise_dropped_and_duplicates_once(ruslit: Path) -> None:
    result = literature.build(ruslit, max_chars=200)
    joined = "\n".join(_texts(result))
    assert "мѣсто" not in joined and "Mais" not in joined and "[1]" not in joined
    assert joined.count("Кругом тишина") == 1  # the footnoted copy dedups against the clean one
    assert result.dropped["archaic"] == 1 and result.dropped["latin"] == 1
    assert result.dropped["duplicate"] == 1


def test_split_is_a_function_of_the_text(ruslit: Path) -> None:
    result = literature.build(ruslit)
    for split, rows in result.splits.items():
        for row in rows:
            assert split_of(norm_key(row["text"]), valid_pct=1, test_pct=0) == split
    assert literature.build(ruslit).splits == result.splits


def test_cli_writes_rows_train_gpt_reads(ruslit: Path, tmp_path: Path) -> None:
    out = tmp_path / "lit"
    stats = literature.main(["--src", str(ruslit), "--out", str(out), "--valid-pct", "50"])
    rows = read_jsonl_rows(out / "train.jsonl") + read_jsonl_rows(out / "valid.jsonl")
    assert rows and all(set(row) == {"text", "source"} for row in rows)
    assert all(literature.MIN_CHARS <= len(row["text"]) <= literature.MAX_CHARS for row in rows)
    assert stats["train"]["pieces"] + stats["valid"]["pieces"] == len(rows)
    assert json.loads((out / "stats.json").read_text(encoding="utf-8"))["works"] == {
        "prose": 1,
        "poems": 1,
    }


def test_mix_concatenates_train_and_keeps_joke_eval(ruslit: Path, tmp_path: Path) -> None:
    lit, jokes, out = tmp_path / "lit", tmp_path / "jokes", tmp_path / "mix"
    literature.main(["--src", str(ruslit), "--out", str(lit)])
    jokes.mkdir()
    joke_rows = [{"text": "- Доктор, я буду жить?\n- А смысл?", "source": "koziev"}]
    (jokes / "train.jsonl").write_text(json.dumps(joke_rows[0], ensure_ascii=False) + "\n")
    (jokes / "valid.jsonl").write_text('{"text": "Вовочка пришёл в школу."}\n')
    stats = mix.main(["--train", str(lit), "--train", str(jokes), "--eval", str(jokes),
                      "--out", str(out)])  # fmt: skip
    train = read_jsonl_rows(out / "train.jsonl")
    assert train[-1] == joke_rows[0]
    assert len(train) == len(read_jsonl_rows(lit / "train.jsonl")) + 1
    assert (out / "valid.jsonl").read_text() == (jokes / "valid.jsonl").read_text()
    assert stats["rows_by_source"]["koziev"] == 1 and stats["eval_files"] == ["valid.jsonl"]


def test_mix_needs_a_valid_split(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "train.jsonl").write_text('{"text": "Кот."}\n')
    with pytest.raises(SystemExit):
        mix.mix([tmp_path / "a"], tmp_path / "a", tmp_path / "out")
