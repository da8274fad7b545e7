"""The `classic` method's index: lemma matching, the choice of joke, the builder, the history."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import storage
from generation.classic import ClassicBackend, ClassicIndex, choose
from generation.classic.index import ABOUT, START, pack, unpack
from generation.training.classic_index import collect, write_index
from generation.types import GenerationRequest, NothingFound
from generation.versions import folder_version
from tests.classic_kit import ABOUT_KOT, JOKES, STARTS_WITH_KOT, build_tiny_index

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> ClassicIndex:
    return build_tiny_index(tmp_path_factory.mktemp("classic"))


def ids(index: ClassicIndex, jokes: list[int]) -> set[str]:
    return {index.ids[joke] for joke in jokes}


def test_a_form_of_the_word_finds_its_lemma_starts_before_about(index: ClassicIndex) -> None:
    found = index.find("кота")  # a form of «кот»: both «Кот пришёл» and «Кота спросили» start so
    assert ids(index, found.start) == STARTS_WITH_KOT
    assert ids(index, found.about) == ABOUT_KOT  # «коту», «кот болеет»; never «кошке»
    for _ in range(10):
        picks = choose(index, "КОТ", count=2)
        assert [pick.match for pick in picks] == [START, START]
        assert ids(index, [pick.joke for pick in picks]) == STARTS_WITH_KOT


def test_about_when_nothing_starts_with_it_and_phrases_match_in_order(
    index: ClassicIndex,
) -> None:
    (pick,) = choose(index, "Миска")
    assert (index.ids[pick.joke], pick.match) == ("t:2", ABOUT)
    assert ids(index, index.find("В бар").start) == {"t:3"}
    assert ids(index, index.find("в баре").start) == {"t:3"}  # lemmas: «бар»
    assert not index.find("Бар в").start  # the words' order counts for «starts with»
    assert ids(index, index.find("доктор кот").about) == {"t:4"}  # every content word


def test_no_joke_twice_until_all_were_shown_then_the_least_recent(index: ClassicIndex) -> None:
    shown: list[str] = []  # least recently shown first, as storage returns it
    rng = random.Random(1)
    for _ in range(4):
        (pick,) = choose(index, "Кот", shown, rng=rng)
        assert index.ids[pick.joke] not in shown
        shown.append(index.ids[pick.joke])
    assert set(shown[:2]) == STARTS_WITH_KOT and set(shown[2:]) == ABOUT_KOT
    for expected in list(shown):  # all seen: the one seen longest ago comes back
        (pick,) = choose(index, "Кот", shown, rng=rng)
        assert index.ids[pick.joke] == expected
        shown.remove(expected)
        shown.append(expected)


def test_nothing_found_is_its_own_error(index: ClassicIndex) -> None:
    for prompt in ("Квантовая хромодинамика", "xyzzy", "…", "я"):
        with pytest.raises(NothingFound):
            choose(index, prompt)


def test_backend_lookup_makes_joke_records(index: ClassicIndex) -> None:
    backend = ClassicBackend(index)
    request = GenerationRequest("Кота", "classic", count=3, exclude=("t:0",))
    jokes = backend.lookup(request)
    assert [joke.params["source_id"] for joke in jokes][:1] == ["t:1"]
    assert [joke.params["match"] for joke in jokes] == [START, ABOUT, ABOUT]
    assert {joke.params["source_id"] for joke in jokes[1:]} == ABOUT_KOT
    first = jokes[0]
    assert first.text == dict(JOKES)["t:1"] and first.method == "classic"
    assert first.model == index.version and first.model.startswith("classic@")
    assert [joke.rank for joke in jokes] == [0, 1, 2]
    same = backend.lookup(GenerationRequest("Кот", "classic", count=4, seed=7))
    again = backend.lookup(GenerationRequest("Кот", "classic", count=4, seed=7))
    assert [j.text for j in same] == [j.text for j in again]  # a seed reproduces the order
    assert backend.generate(["Кот", "xyzzy"], {}, [1, 2])[1] == ""


def test_collect_cleans_filters_and_names_jokes_as_for_training() -> None:
    sources = {
        "koziev": [
            "- Привет, как дела?\n- Отлично, а у тебя?",  # kept: koziev:0
            "- Да.\n- Нет.",  # too short
            "- Привет,  как дела?\n- Отлично, а у тебя?",  # a duplicate once cleaned
            "- Ты сука!\n- Сам такой, понял меня?",  # obscene
        ],
        "humornet": ["– Ты кем работаешь?– Телохранителем. – Где?– В телохранилище.", "x" * 300],
        "anecapi": ["Это анекдот из оценочного набора, его нельзя показывать."],
    }
    jokes, counts = collect(sources, ["Это анекдот из оценочного набора, его нельзя показывать!"])
    assert jokes == [
        ("koziev:0", "- Привет, как дела?\n- Отлично, а у тебя?"),
        ("humornet:0", "- Ты кем работаешь?\n- Телохранителем.\n- Где?\n- В телохранилище."),
    ]
    assert counts["koziev"]["too_short"] == counts["koziev"]["duplicate"] == 1
    assert counts["koziev"]["obscene"] == counts["humornet"]["too_long"] == 1
    assert counts["anecapi"]["eval_overlap"] == 1


def test_build_is_reproducible_and_round_trips(tmp_path: Path) -> None:
    one = write_index(JOKES, tmp_path / "one")
    two = write_index(JOKES, tmp_path / "two")
    assert one.version == two.version == folder_version(
        "classic", tmp_path / "one", patterns=("jokes.jsonl.xz", "lemmas.npz")
    )
    for name in ("jokes.jsonl.xz", "lemmas.npz"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert one.texts == [text for _, text in JOKES] and one.ids == [i for i, _ in JOKES]
    three = write_index([*JOKES, ("t:6", "Кот учёный ходит по цепи кругом.")], tmp_path / "3")
    assert three.version != one.version


def test_posting_lists_pack_and_unpack() -> None:
    lists = [[0, 5, 9], [], [3], [1, 2, 3, 4], []]
    offsets, gaps = pack(lists)
    values = unpack(offsets, gaps)
    assert [values[offsets[i] : offsets[i + 1]].tolist() for i in range(len(lists))] == lists
    empty_offsets, empty_gaps = pack([[], []])
    assert unpack(empty_offsets, empty_gaps).tolist() == []


def test_a_broken_index_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        ClassicIndex.load(tmp_path)
    write_index(JOKES, tmp_path)
    (tmp_path / "lemmas.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        ClassicIndex.load(tmp_path)


def test_the_shipped_index_loads_and_finds_forms_of_a_word() -> None:
    folder = ROOT / "models" / "classic"
    index = ClassicIndex.load(folder)
    assert len(index) > 50_000
    assert index.version == folder_version(
        "classic", folder, patterns=("jokes.jsonl.xz", "lemmas.npz")
    )
    assert {source.split(":")[0] for source in index.ids} == {"koziev", "humornet", "anecapi"}
    found = index.find("кота")
    assert found.start and found.about
    assert all(index.texts[joke].lstrip("- ").lower().startswith("кот") for joke in found.start)
    assert np.all(index.openings[:, 0] >= 0)  # every joke has a first word
    sizes = sum(path.stat().st_size for path in folder.iterdir())
    assert sizes < 8_000_000  # small enough to commit


# -- what a user has been shown (storage) ------------------------------------------------------


@pytest.fixture
async def sessions(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'jokes.db'}"
    await storage.migrate(url)
    engine = storage.create_engine(url)
    yield storage.make_sessionmaker(engine)
    await engine.dispose()


async def test_shown_classic_ids_least_recently_shown_first(sessions) -> None:
    rows = [(1, "classic", "a"), (1, "classic", "b"), (2, "classic", "z"), (1, "gpt", None)]
    rows += [(1, "classic", "a"), (1, "classic", "c")]
    for user_id, method, source in rows:
        async with sessions() as session:
            await storage.save_joke(
                session,
                user_id=user_id,
                chat_id=user_id,
                prompt="Кот",
                text="Кот пришёл домой.",
                method=method,
                model="classic@000000" if source else "gpt@000000",
                params={"source_id": source, "match": START} if source else {"seed": 1},
                latency_ms=1.0,
            )
    async with sessions() as session:
        assert await storage.shown_classic_ids(session, 1) == ["b", "a", "c"]
        assert await storage.shown_classic_ids(session, 2) == ["z"]
        assert await storage.shown_classic_ids(session, 3) == []
