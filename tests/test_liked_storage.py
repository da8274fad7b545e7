"""storage.favourites against a real, migrated SQLite file, and the signed `j<id>_<sig>`
references of bot/shared_jokes.py (the inline handler's and the deep links' way to a joke);
tests/test_share_links.py covers the signatures themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

import storage
from bot.shared_jokes import ShareLinks

ME, SOMEONE = 7, 8
LINKS = ShareLinks.from_secret("100000:storage-test-token")


@pytest.fixture
async def sessions(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'jokes.db'}"
    await storage.migrate(url)
    engine = storage.create_engine(url)
    yield storage.make_sessionmaker(engine)
    await engine.dispose()


async def new_joke(sessions, text: str, *, chat_id: int = ME, user_id: int = ME) -> int:
    async with sessions() as session:
        return await storage.save_joke(
            session, user_id=user_id, chat_id=chat_id, prompt=text.split()[0], text=text,
            method="gpt", model="models/gpt", params={}, latency_ms=1.0,
        )


async def vote(sessions, joke_id: int, user_id: int, value: int) -> None:
    async with sessions() as session:
        await storage.record_vote(session, joke_id=joke_id, user_id=user_id, value=value)


async def liked_texts(sessions, user_id: int = ME, offset: int = 0, limit: int = 5) -> list[str]:
    async with sessions() as session:
        return [j.text for j in await storage.liked_jokes(session, user_id, offset, limit)]


async def test_newest_like_first_across_chats_with_counts_and_pages(sessions) -> None:
    ids = [await new_joke(sessions, f"Шутка {n}") for n in range(3)]
    ids.append(await new_joke(sessions, "Групповая шутка", chat_id=-100, user_id=SOMEONE))
    disliked = await new_joke(sessions, "Не смешно")
    for joke_id in ids:
        await vote(sessions, joke_id, ME, 1)
    await vote(sessions, ids[0], SOMEONE, 1)
    await vote(sessions, ids[0], SOMEONE + 1, -1)
    await vote(sessions, disliked, ME, -1)
    await vote(sessions, ids[1], SOMEONE, 1)  # someone else's like: not mine, not "newer"

    assert await liked_texts(sessions) == ["Групповая шутка", "Шутка 2", "Шутка 1", "Шутка 0"]
    assert await liked_texts(sessions, offset=1, limit=2) == ["Шутка 2", "Шутка 1"]
    assert await liked_texts(sessions, offset=4) == []
    assert await liked_texts(sessions, SOMEONE) == ["Шутка 1", "Шутка 0"]
    async with sessions() as session:
        assert await storage.count_liked(session, ME) == 4
        assert await storage.count_liked(session, 999) == 0
        oldest = (await storage.liked_jokes(session, ME, 3, 5))[0]
    assert (oldest.id, oldest.likes, oldest.dislikes) == (ids[0], 2, 1)
    assert oldest.liked_at is not None

    await vote(sessions, disliked, ME, 1)  # 👎 switched to 👍: liked now, so first
    await vote(sessions, ids[3], ME, 1)  # 👍 pressed again: the like is removed
    assert await liked_texts(sessions) == ["Не смешно", "Шутка 2", "Шутка 1", "Шутка 0"]


async def test_bad_paging_arguments_read_nothing(sessions) -> None:
    await vote(sessions, await new_joke(sessions, "Шутка"), ME, 1)
    assert await liked_texts(sessions, limit=0) == []
    assert await liked_texts(sessions, offset=-1) == []


async def test_joke_by_id_and_shared_references(sessions) -> None:
    joke_id = await new_joke(sessions, "Кот вошёл в бар")
    await vote(sessions, joke_id, SOMEONE, -1)
    async with sessions() as session:
        card = await storage.joke_by_id(session, joke_id)
        assert card is not None and (card.text, card.likes, card.dislikes) == (
            "Кот вошёл в бар", 0, 1,
        )
        assert await storage.joke_by_id(session, joke_id + 1) is None
        assert await storage.joke_by_id(session, 2**63) is None
        assert await storage.joke_by_id(session, 0) is None
        found = await LINKS.joke(session, f" {LINKS.ref(joke_id)} ")
        assert found is not None and found.id == joke_id
        assert await LINKS.joke(session, LINKS.ref(joke_id + 1)) is None  # signed, no such joke
        sig = LINKS.seal(joke_id)
        for bad in (
            None, "", "j", "12", f"j{joke_id}x", "j-1", "j0", "j01", f"x{joke_id}",
            f"j{joke_id}",  # guessed: unsigned
            f"j{joke_id}_", f"j{joke_id}_{sig}x", f"j0{joke_id}_{sig}", f"{joke_id}_{sig}",
        ):
            assert await LINKS.joke(session, bad) is None, bad
    async with sessions() as session:
        assert await storage.delete_joke(session, joke_id)
        assert await LINKS.joke(session, LINKS.ref(joke_id)) is None


def test_parse_joke_ref() -> None:
    def signed(joke_id: int, prefix: str = "j") -> str:
        return f"{prefix}{joke_id}_{LINKS.seal(joke_id)}"

    assert LINKS.ref(12) == signed(12)
    assert LINKS.parse(signed(12)) == 12 and LINKS.parse(signed(12, "J")) == 12
    assert LINKS.parse(signed(2**63 - 1)) == 2**63 - 1
    assert LINKS.parse(signed(2**63)) is None
    assert LINKS.parse(signed(int("9" * 30))) is None
    assert LINKS.parse(f"j１２_{LINKS.seal(12)}") is None  # fullwidth digits are not an id
    assert LINKS.parse(f"{signed(12)} {signed(13)}") is None


async def test_a_page_of_the_longest_jokes_fits_one_message(sessions) -> None:
    from bot.handlers.liked import PAGE_SIZE, render_page

    for n in range(PAGE_SIZE + 1):
        await vote(sessions, await new_joke(sessions, f"Шутка{n} " + "ха" * 500), ME, 1)
    async with sessions() as session:
        text, markup, page = await render_page(session, ME, 1, LINKS)
        assert page == 1 and len(text) <= 4096 and text.count("…") == PAGE_SIZE
        assert text.startswith(f"Тебе понравилось ({PAGE_SIZE + 1}) — стр. 1/2:")
        assert [b.text for b in markup.inline_keyboard[-1]] == ["▶️"]
        text, markup, page = await render_page(session, ME, 99, LINKS)  # past the end: last
        assert page == 2 and "6. Шутка0 " in text
        assert [b.text for b in markup.inline_keyboard[-1]] == ["◀️"]
        _, _, page = await render_page(session, 999, 3, LINKS)
        assert page == 0
