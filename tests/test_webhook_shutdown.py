"""`python -m bot --webhook` as a process: SIGTERM with votes and jokes in flight exits 0 and keeps
every thanked vote; what arrives meanwhile waits at Telegram for the next start. Also
`python -m bot --local --webhook`, the web chat's way in, and the one-line start-up errors."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.fault_kit import (
    ROOT,
    bot_env,
    db_rows,
    fake_bot_process,
    idle,
    sigterm,
    wait_for,
)
from tests.local_api import LocalBotApi
from tests.webhook_kit import SECRET, free_port, running_webhook_bot

USER = 501
GROUP = -100501


def webhook_env(api: LocalBotApi, db: Path, port: int, **extra: str) -> dict[str, str]:
    return bot_env(
        api.url,
        db,
        WEBHOOK_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_PORT=str(port),
        WEBHOOK_SECRET=SECRET,
        **extra,
    )


def stored_votes(db: Path) -> set[tuple[int, int, int]]:
    return set(
        db_rows(
            db,
            "SELECT v.user_id, j.message_id, v.value FROM votes v JOIN jokes j ON j.id = v.joke_id",
        )
    )


# long: one scenario read in order (start, jokes, votes and jokes in flight, SIGTERM, restart)
async def test_sigterm_in_webhook_mode_exits_0_and_keeps_every_thanked_vote(
    api: LocalBotApi, tmp_path: Path
) -> None:
    db, port = tmp_path / "j.db", free_port()
    api.webhooks.retry_min_s, api.webhooks.retry_max_s = 0.05, 0.2
    env = webhook_env(api, db, port, FAKE_DELAY_S="0.3", SHUTDOWN_GRACE_S="5")
    users = list(range(USER, USER + 6))
    async with fake_bot_process(env, "--webhook", log=tmp_path / "bot.log") as proc:
        await api.wait_until(lambda: api.webhooks.active, 60, "the bot to set its webhook")
        for user in users:
            api.send_text(user, f"/joke Кот{user}", chat_id=GROUP, chat_type="group")
        jokes = [m.message_id for m in await api.wait_for_bot_messages(GROUP, 6, timeout=20)]
        await wait_for(
            lambda: db_rows(db, "SELECT COUNT(*) FROM jokes WHERE message_id > 0") == [(6,)], 10
        )
        presses = {}
        for n, user in enumerate(users):  # everyone votes on two jokes
            for offset, text in ((0, "👍 0"), (1, "👎 0")):
                message = jokes[(n + offset) % len(jokes)]
                query = api.press_button(user, message, text=text, chat_id=GROUP)
                presses[query] = (user, message, 1 if text.startswith("👍") else -1)
        words = [  # and jokes are being written
            api.send_text(user, f"/joke Пёс{user}", chat_id=GROUP, chat_type="group")
            for user in users[:3]
        ]
        await api.wait_until(lambda: any(api.callback_answer(q) for q in presses), 10)
        began = time.monotonic()
        code = await sigterm(proc)
        took = time.monotonic() - began
    output = (tmp_path / "bot.log").read_text()
    assert code == 0, output[-3000:]
    assert took < 5 + 3, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    assert "update(s) in flight" in output  # SIGTERM came with work in flight
    assert SECRET not in output  # the secret is never logged
    replied = {m.reply_to.message_id for m in api.bot_messages(GROUP) if m.reply_to}
    delivered = {w.message_id for w in words if w.update_id not in _still_queued(api)}
    assert delivered <= replied, output[-4000:]  # what the bot took, it answered before exit

    def thanked() -> set[tuple[int, int, int]]:
        answers = {q: api.callback_answer(q) for q in presses}
        return {presses[q] for q, a in answers.items() if a is not None and a.text == "Спасибо!"}

    assert thanked(), "SIGTERM came too late to catch votes in flight"
    assert stored_votes(db) == thanked()
    queued = _still_queued(api)  # refused with 503 during the stop, or sent after it
    api.send_text(USER, "/joke После")  # sent while no bot runs: Telegram keeps it
    async with running_webhook_bot(api, db) as restarted:  # a new start gets them all
        await api.wait_for_bot_message(USER, timeout=20)
        await idle(restarted)
        assert restarted.app.tracker.skipped == 0  # nothing came twice
    assert stored_votes(db) == thanked()  # nothing thanked for is missing or undone
    assert len(thanked()) == len(presses)  # and the presses kept at Telegram were handled
    assert {w.message_id for w in words} <= replied | _replied_to(api), queued


def _still_queued(api: LocalBotApi) -> set[int]:
    return {record.update_id for record in api.pending}


def _replied_to(api: LocalBotApi) -> set[int]:
    return {m.reply_to.message_id for m in api.bot_messages(GROUP) if m.reply_to}


async def test_local_webhook_mode_serves_the_web_chat(tmp_path: Path) -> None:
    """`python -m bot --local --webhook`: the local server posts the web chat's words to the bot."""
    page_port, hook_port = free_port(), free_port()
    env = bot_env("http://127.0.0.1:9", tmp_path / "j.db", WEBHOOK_PORT=str(hook_port))
    args = ("--local", "--webhook", "--port", str(page_port))
    async with fake_bot_process(env, *args, log=tmp_path / "bot.log") as proc:
        page = f"http://127.0.0.1:{page_port}"
        await wait_for(lambda: "Local try-out" in (tmp_path / "bot.log").read_text(), 60)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{page}/ui/send", json={"text": "Кот"}) as response:
                assert response.status == 200
            texts: list[str] = []
            for _ in range(80):  # as the page does, a few times a second
                async with http.get(f"{page}/ui/messages?since=0") as response:
                    state = await response.json()
                texts = [m["text"] for m in state["messages"] if m["from_bot"]]
                if texts:
                    break
                await asyncio.sleep(0.25)
            assert texts and texts[0].startswith("Кот"), (tmp_path / "bot.log").read_text()
            async with http.get(f"http://127.0.0.1:{hook_port}/healthz") as response:
                assert response.status == 200
        assert await sigterm(proc) == 0
    assert "Traceback" not in (tmp_path / "bot.log").read_text()


def _start(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_misconfigured_webhook_mode_stops_with_one_line(
    api: LocalBotApi, tmp_path: Path
) -> None:
    db = tmp_path / "j.db"
    no_url = _start(bot_env(api.url, db), "--webhook")
    assert no_url.returncode == 2 and no_url.stderr.startswith("WEBHOOK_URL is not set")
    bad = _start(bot_env(api.url, db, WEBHOOK_SECRET="has spaces", WEBHOOK_PATH="hook"))
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "WEBHOOK_SECRET" in bad.stderr and "WEBHOOK_PATH" in bad.stderr
    assert "has spaces" not in bad.stderr  # a secret, even a wrong one, is not printed
    with __import__("socket").socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_env(api.url, db, WEBHOOK_URL="https://bot.example.com", WEBHOOK_PORT=str(port))
        busy = await asyncio.to_thread(_start, env, "--webhook")
    assert busy.returncode == 1, busy.stderr
    assert busy.stderr.strip().splitlines()[-1].startswith("Cannot start: cannot listen on")
