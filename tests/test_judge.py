"""The judge on a tiny synthetic task with a tiny random GPT: it learns, saves, loads, refuses."""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from generation.judge import Judge, JudgeScore, JudgeUnavailable
from generation.judge.features import TextAnalyzer, tfidf_rows
from generation.training.judge_data import is_heldout
from generation.training.train_judge import Features, main
from tests.fixtures_models import make_tiny_gpt

pytestmark = pytest.mark.slow

FILLER = [
    "вчера",
    "мужик",
    "пошёл",
    "в",
    "магазин",
    "и",
    "сказал",
    "жене",
    "что",
    "купил",
    "хлеба",
    "молока",
    "сыра",
]
FUNNY = ("кот", "штирлиц", "колобок")
DULL = ("отчёт", "заседание", "бюджет")
RATED_UP = ("зонтик", "пингвин")


def _sentence(rng: random.Random, markers: tuple[str, ...], n: int = 8) -> str:
    words = [*rng.choices(FILLER, k=n), rng.choice(markers), rng.choice(markers)]
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def _unique(rng: random.Random, markers: tuple[str, ...], count: int, seen: set[str]) -> list[str]:
    out = []
    while len(out) < count:
        text = _sentence(rng, markers)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Gold (humour 1..5) and FUN (joke / not) files where a few marker words decide."""
    rng, seen = random.Random(0), set[str]()
    folder = tmp_path_factory.mktemp("corpus")
    with (folder / "clean_comedy_gold_ru.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "score", "score1", "score2", "score3", "score4", "score5"])
        for markers, base in ((FUNNY, 4.0), (DULL, 1.5)):
            for text in _unique(rng, markers, 80, seen):
                writer.writerow([text, round(base + rng.random() * 0.8, 1), 1, 2, 3, 4, 5])
    fun = {t: 1 for t in _unique(rng, FUNNY, 100, seen)}
    fun |= {t: 0 for t in _unique(rng, DULL, 100, seen)}
    (folder / "fun_dataset_assessed.json").write_text(json.dumps(fun, ensure_ascii=False))
    return folder


@pytest.fixture(scope="module")
def gpt_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gpts")
    return make_tiny_gpt(root / "a", seed=0), make_tiny_gpt(root / "b", seed=1, train_steps=5)


def _backend(folder: Path):  # type: ignore[no-untyped-def]
    from generation.gpt.backend import GptBackend

    return GptBackend.from_pretrained(folder, quantize="int8")


def _train(corpus: Path, out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    args = ["--corpus", str(corpus), "--out", str(out), "--repeats", "2", "--gpt", ""]
    args += ["--features", "chars+words", "--candidates", *extra]
    assert main(args) == 0
    return json.loads((out / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def text_judge(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    out = tmp_path_factory.mktemp("judge")
    return out, _train(corpus, out, "chars+words")


def test_learns_a_separable_signal(text_judge: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    folder, metrics = text_judge
    assert metrics["shipped"]["gold"]["auc"] > 0.9
    assert metrics["shipped"]["fun"]["auc"] > 0.9
    assert metrics["shipped"]["gold"]["spearman"] > 0.5
    assert metrics["examples"]["gold"]["heldout"] > 10
    assert "length" in metrics["baselines"]
    judge = Judge.load(folder)
    scores = judge.score(["Кот и колобок пошли в магазин.", "Заседание про бюджет и отчёт."])
    assert all(isinstance(s, JudgeScore) and 0 <= s.liked <= 1 and s.bpc is None for s in scores)
    assert scores[0].liked > scores[1].liked
    assert judge.version == metrics["version"]
    assert judge.version.startswith("judge@")


def test_serving_tfidf_matches_sklearn(corpus: Path) -> None:
    texts = [t for t in json.loads((corpus / "fun_dataset_assessed.json").read_text())][:60]
    feats = Features("chars+words", None).fit(texts[:40])
    expected = feats.transform(texts[40:]).toarray()
    vocab = feats.vectorizer.vocabulary_
    rows = tfidf_rows(texts[40:], TextAnalyzer(words=True), vocab, feats.vectorizer.idf_)
    got = np.zeros_like(expected)
    for i, (cols, values) in enumerate(rows):
        got[i, cols] = values
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_round_trip_and_version(text_judge: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    folder, _ = text_judge
    texts = ["Штирлиц купил хлеба.", "Отчёт о бюджете.", ""]
    first = Judge.load(folder)
    first.save(tmp_path / "copy")
    again = Judge.load(tmp_path / "copy")
    assert again.version == first.version
    assert again.score(texts) == first.score(texts)
    first.coef_text[0] += 0.5
    changed = first.save(tmp_path / "changed")
    assert changed != again.version
    assert Judge.load(tmp_path / "changed").version == changed


def test_missing_or_corrupt_files(text_judge: tuple[Path, dict], tmp_path: Path) -> None:  # type: ignore[type-arg]
    folder, _ = text_judge
    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "weights.safetensors").unlink()
    with pytest.raises(JudgeUnavailable, match=r"lacks weights\.safetensors"):
        Judge.load(broken)
    (broken / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(JudgeUnavailable, match="unreadable"):
        Judge.load(broken)
    with pytest.raises(JudgeUnavailable, match="lacks"):
        Judge.load(tmp_path / "nowhere")


def test_ratings_rows_are_used(corpus: Path, tmp_path: Path) -> None:
    """Votes on words gold and FUN never use must move the judge toward the liked ones."""
    rng, seen = random.Random(1), set[str]()
    rows = [(t, 5, 0) for t in _unique(rng, RATED_UP, 60, seen)]
    rows += [(t, 0, 4) for t in _unique(rng, ("табуретка", "кастрюля"), 60, seen)]
    ratings = tmp_path / "ratings.jsonl"
    with ratings.open("w", encoding="utf-8") as fh:
        for i, (text, likes, dislikes) in enumerate(rows):
            record = {"id": i, "text": text, "likes": likes, "dislikes": dislikes, "prompt": "x"}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    metrics = _train(corpus, tmp_path / "rated", "chars+words", "--ratings", str(ratings))
    heldout = sum(is_heldout(t) for t, _, _ in rows)
    assert metrics["examples"]["ratings"] == {"train": len(rows) - heldout, "heldout": heldout}
    assert metrics["shipped"]["ratings"]["auc"] > 0.9
    liked, disliked = Judge.load(tmp_path / "rated").score(["Пингвин и зонтик.", "Кастрюля."])
    assert liked.liked > disliked.liked


def test_gpt_features_bits_and_mismatch(
    corpus: Path, gpt_dirs: tuple[Path, Path], tmp_path: Path, one_torch_thread: None
) -> None:
    own, other = gpt_dirs
    out = tmp_path / "gptjudge"
    metrics = _train(
        corpus, out, "chars+words+gpt", "--features", "chars+words+fluency", "--gpt", str(own)
    )
    assert metrics["shipped"]["gold"]["auc"] > 0.9
    assert metrics["candidates"]["chars+words+gpt"]["fun"]["auc"] > 0.9
    assert "bpc" in metrics["baselines"]
    judge = Judge.load(out, gpt=_backend(own))
    texts = ["Кот пошёл в магазин.", "Отчёт."]
    scores = judge.score(texts)
    assert all(s.bpc is not None and s.bpc > 0 for s in scores)
    alone = judge.score(texts[:1])[0]  # batch-mates change (almost) nothing
    assert alone.liked == pytest.approx(scores[0].liked, abs=1e-5)
    assert alone.bpc == pytest.approx(scores[0].bpc, abs=1e-4)
    given = judge.score(texts, bpc=[s.bpc for s in scores])  # no second GPT pass needed
    assert [g.liked for g in given] == pytest.approx([s.liked for s in scores], abs=1e-9)
    with pytest.raises(JudgeUnavailable, match="trained with GPT"):
        Judge.load(out, gpt=_backend(other))
    with pytest.raises(JudgeUnavailable, match="no GPT was given"):
        Judge.load(out)
