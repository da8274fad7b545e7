"""bench.feedback_loop's pieces: the hidden taste votes reproducibly and as its probabilities say,
the human-rated data is cut in two disjoint halves, the phases get disjoint words, the report
says whether B won; and the whole loop on a tiny model (bot over HTTP, /export, tune, the
experiment), for a handful of jokes."""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from bench.feedback_loop import run, word_pool
from bench.feedback_report import markdown, ratio
from bench.feedback_taste import Taste, half_of, write_half
from generation.training.corpus import FUN_FILE, GOLD_FILE, load_fun, load_gold
from tests.fixtures_models import SENTENCES, make_tiny_gpt
from tests.test_tune_dpo import write_corpus


class LengthJudge:
    """Log-odds of "liked" = (characters - 20) / 10: longer jokes are liked more."""

    def logits(self, texts: Sequence[str], *, fluency: bool = True) -> tuple[np.ndarray, None]:
        return np.array([(len(t) - 20) / 10 for t in texts], dtype=float), None


def test_the_taste_sharpens_with_temperature_and_votes_reproducibly() -> None:
    texts = ["к" * 10, "к" * 20, "к" * 40]
    mild, sharp = Taste(LengthJudge(), 1.0, seed=3), Taste(LengthJudge(), 0.5, seed=3)
    assert mild.p_like(texts)[1] == pytest.approx(0.5) == sharp.p_like(texts)[1]
    assert sharp.p_like(texts)[0] < mild.p_like(texts)[0] < 0.5
    assert sharp.p_like(texts)[2] > mild.p_like(texts)[2] > 0.5
    votes = [sharp.likes(user, joke, texts[2]) for user in range(40) for joke in range(25)]
    assert votes == [Taste(LengthJudge(), 0.5, seed=3).likes(u, j, texts[2])
                     for u in range(40) for j in range(25)]  # fmt: skip
    assert sum(votes) / len(votes) == pytest.approx(sharp.p_like(texts)[2], abs=0.03)
    other = [Taste(LengthJudge(), 0.5, seed=4).likes(u, j, texts[1]) for u in range(40)
             for j in range(25)]  # fmt: skip
    assert 0.45 < sum(other) / len(other) < 0.55
    with pytest.raises(ValueError):
        Taste(LengthJudge(), 0.0)


def test_the_human_rated_data_is_cut_in_two_disjoint_halves(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    corpus = write_corpus(tmp_path / "corpus")
    counts = [write_half(corpus, tmp_path / f"half{h}", h) for h in (0, 1)]
    gold = [dict(load_gold(tmp_path / f"half{h}" / GOLD_FILE)) for h in (0, 1)]
    fun = [dict(load_fun(tmp_path / f"half{h}" / FUN_FILE)) for h in (0, 1)]
    assert not set(gold[0]) & set(gold[1]) and not set(fun[0]) & set(fun[1])
    assert {**gold[0], **gold[1]} == dict(load_gold(corpus / GOLD_FILE))
    assert {**fun[0], **fun[1]} == dict(load_fun(corpus / FUN_FILE))
    assert all(half_of(text) == 1 for text in gold[1])
    assert all(c["gold"] > 5 and c["fun"] > 5 for c in counts)


def test_the_phases_get_disjoint_words(tmp_path: Path) -> None:
    test = tmp_path / "test.jsonl"
    test.write_text(json.dumps({"text": "Зебра пришла в бар."}, ensure_ascii=False) + "\n")
    first, second = word_pool(test, seed=1)
    assert not set(first) & set(second) and abs(len(first) - len(second)) <= 1
    assert "Зебра" in first + second and word_pool(test, seed=1) == (first, second)


def test_b_wins_only_when_its_interval_is_above_as() -> None:
    a, b = ratio(50, 100), ratio(80, 100)
    assert a["low"] < 0.5 < a["high"] < b["low"]
    assert ratio(0, 0)["ratio"] is None


# --- the whole loop on a tiny model -------------------------------------------------------------


def tiny_setup(tmp_path: Path) -> argparse.Namespace:
    base = make_tiny_gpt(tmp_path / "gpt", prepend_bos=False)
    (base / "train_summary.json").write_text(json.dumps({"stages": [{"what": "tiny"}]}))
    data = tmp_path / "prepared"
    data.mkdir()
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in SENTENCES]
    (data / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return argparse.Namespace(
        jokes=6, jokes_b=8, users=8, method="gpt-sample", candidates=0, temperature=1.0,
        tune_minutes=0.2, epochs=4.0, lr=1e-3, max_bpc_increase=10.0, bpc_limit=20,
        no_judge=True, base=base, data=data, corpus=tmp_path / "none", taste_dir=tmp_path,
        taste_sources="gold", seed=1, workdir=tmp_path / "work",
    )  # fmt: skip


class ParityTaste(Taste):
    """Likes the jokes with an even id: half liked, half not, whatever a tiny model writes."""

    def likes(self, user: int, joke_id: int, text: str) -> bool:
        return joke_id % 2 == 0


def test_the_loop_runs_end_to_end_on_a_tiny_model(tmp_path: Path) -> None:
    args = tiny_setup(tmp_path)
    words = (["Кот", "Пёс", "Волк", "Лиса"], ["Сова", "Мышь", "Конь", "Бык"])
    report = asyncio.run(run(args, taste=ParityTaste(LengthJudge()), words=words))
    phase_a, exported, tune = report["phase_a"], report["export"], report["tune"]
    assert phase_a["votes"] >= 6 and phase_a["unanswered_presses"] == 0
    with sqlite3.connect(args.workdir / "jokes.db") as db:
        rated = db.execute("SELECT COUNT(DISTINCT joke_id) FROM votes").fetchone()[0]
        arms = dict(db.execute("SELECT arm, COUNT(*) FROM jokes GROUP BY arm").fetchall())
        prompts = {p for (p,) in db.execute("SELECT DISTINCT prompt FROM jokes WHERE arm IS NULL")}
    # /export through the bot held every joke voted on in phase A; the file is what it sent
    assert exported == {"bot_count": phase_a["votes"], "bot_lines": phase_a["votes"],
                        "bot_truncated": False, "file_lines": phase_a["votes"]}  # fmt: skip
    lines = (args.workdir / "ratings.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == phase_a["votes"] and prompts <= set(words[0])
    assert tune["version"] and tune["train_pairs"] + tune["heldout_pairs"] > 0
    assert (args.workdir / "gpt-tuned" / "config.json").is_file()
    assert report["experiment"] == f"gpt-sample:{args.base},{args.workdir / 'gpt-tuned'}"
    figures = report["arms"]
    assert figures["A"]["votes"] + figures["B"]["votes"] == report["phase_b"]["votes"]
    assert arms.get("A", 0) + arms.get("B", 0) == report["phase_b"]["votes"]
    assert rated == phase_a["votes"] + report["phase_b"]["votes"]
    assert "phase B, arm B" in markdown(report | {"command": "x", "machine": "m", "minutes": 1})


def test_missing_inputs_stop_the_loop_before_anyone_votes(tmp_path: Path) -> None:
    args = tiny_setup(tmp_path)
    args.corpus, args.no_judge = tmp_path / "no-corpus", False
    args.data = tmp_path / "no-data"
    with pytest.raises(SystemExit, match=r"missing .*no-data/test\.jsonl.*no-corpus"):
        asyncio.run(run(args, taste=ParityTaste(LengthJudge()), words=(["Кот"], ["Пёс"])))
    assert not (args.workdir / "jokes.db").exists()
