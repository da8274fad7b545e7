"""Tuning a tiny GPT on votes: the DPO loss falls, held-out preference accuracy rises, the folder
loads through the real loader with a version of its own, the judge follows it, and a run resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from generation.tune.__main__ import main
from generation.tune.dpo import dpo_loss
from generation.tune.pairs import PairSettings
from generation.tune.result import TuneConfig
from generation.tune.run import CHECKPOINT, tune
from generation.tune.train import DpoTrainer, TrainSettings
from tests.fixtures_models import SENTENCES, make_tiny_gpt
from tests.test_tune_pairs import row

WORDS = (
    "Кот", "Пёс", "Волк", "Заяц", "Лиса", "Медведь", "Ёж", "Сова", "Мышь", "Конь", "Бык",
    "Гусь", "Утка", "Рыба", "Жук", "Лось", "Барсук", "Крот", "Белка", "Хомяк", "Сом", "Щука",
    "Орёл", "Сокол", "Слон", "Тигр", "Лев", "Енот",
)  # fmt: skip
FAST = TrainSettings(beta=0.5, lr=1e-3, batch_size=8, epochs=12, minutes=5, warmup_steps=2)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT in the shipped model's layout: no `prepend_bos` flag, a `train_summary.json`."""
    folder = make_tiny_gpt(tmp_path_factory.mktemp("base") / "gpt", prepend_bos=False)
    (folder / "train_summary.json").write_text(json.dumps({"stages": [{"what": "tiny"}]}))
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("prepared")
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in SENTENCES]
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ratings(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Per word: a long liked joke and a short disliked one. The base finds the short one more
    likely, so by likelihood it ranks every pair the wrong way round."""
    lines = []
    for i, word in enumerate(WORDS):
        lines.append(row(f"{word} пошёл в магазин и купил молоко.", likes=3, id=2 * i))
        lines.append(row(f"{word} скучно.", dislikes=2, id=2 * i + 1))
    lines.append("{broken")
    path = tmp_path_factory.mktemp("votes") / "ratings.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def write_corpus(folder: Path) -> Path:
    """The judge's corpus: gold jokes scored 1..5 and FUN texts, a few dozen of each."""
    gold = ["text,score,score1,score2,score3,score4,score5"]
    gold += [f'"{w} купил молоко, {n}.",{4 + n % 2},4,5,4,5,4' for n, w in enumerate(WORDS)]
    gold += [f'"{w} скучал {n} раз.",{1 + n % 2},1,2,1,2,1' for n, w in enumerate(WORDS)]
    (folder / "clean_comedy_gold_ru.csv").write_text("\n".join(gold) + "\n", encoding="utf-8")
    fun = {f"{w} пошёл в магазин {n}.": 1 for n, w in enumerate(WORDS)}
    fun |= {f"{w} скучно {n}.": 0 for n, w in enumerate(WORDS)}
    (folder / "fun_dataset_assessed.json").write_text(json.dumps(fun, ensure_ascii=False))
    return folder


def config(base: Path, data: Path, corpus: Path | None = None, **extra: object) -> TuneConfig:
    judge = corpus is not None
    return TuneConfig(
        base=base,
        data=data,
        corpus=corpus or Path("/nonexistent"),
        judge=judge,
        train=FAST,
        pairs=PairSettings(heldout=0.3),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def tuned(
    base: Path, data: Path, ratings: Path, corpus: Path, tmp_path_factory: pytest.TempPathFactory
):  # type: ignore[no-untyped-def]
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("out") / "gpt-tuned"
    cfg = config(base, data, corpus, max_bpc_increase=10.0)
    with pytest.MonkeyPatch.context() as patch:
        # the judge trainer's bootstrap of its report (thousands of AUCs) is its own test's
        # business; here only the judge it writes matters
        patch.setattr("generation.training.train_judge.versus_baselines", lambda *a: {})
        return out, tune(ratings, out, cfg, say=lambda _: None)


def test_dpo_loss_is_the_sigmoid_of_the_reward_margin() -> None:
    loss, margin = dpo_loss(
        torch.tensor([-10.0]),
        torch.tensor([-12.0]),
        torch.tensor([-11.0]),
        torch.tensor([-11.0]),
        0.5,
    )
    assert float(margin) == pytest.approx(1.0)
    assert float(loss) == pytest.approx(-float(torch.nn.functional.logsigmoid(torch.tensor(1.0))))


def test_loss_falls_and_heldout_accuracy_rises(tuned) -> None:  # type: ignore[no-untyped-def]
    _, result = tuned
    assert result.written and not result.guard_failed
    assert result.train_pairs >= 10 and result.heldout_pairs >= 3
    assert result.input["skipped"] == {"not JSON": 1}
    losses = result.last_loss, result.first_loss
    assert losses[0] < 0.5 * losses[1]
    assert result.before.heldout_accuracy <= 0.2  # the base prefers the short, disliked jokes
    assert result.after.heldout_accuracy >= 0.8
    assert result.after.heldout_loss < result.before.heldout_loss
    assert any("held-out preference accuracy" in m for m in result.messages)


def test_folder_loads_through_the_real_loader_with_its_own_version(tuned, base: Path) -> None:  # type: ignore[no-untyped-def]
    from generation.gpt.backend import GptBackend
    from generation.judge import Judge

    out, result = tuned
    tuned_gpt, base_gpt = GptBackend.from_pretrained(out), GptBackend.from_pretrained(base)
    assert tuned_gpt.model_id == result.version != base_gpt.model_id == result.base_version
    assert tuned_gpt.bos_id is not None and base_gpt.bos_id is not None  # from train_summary.json
    assert (out / "tokenizer.json").read_bytes() == (base / "tokenizer.json").read_bytes()
    stages = json.loads((out / "train_summary.json").read_text())["stages"]
    assert [s["what"][:3] for s in stages] == ["tin", "DPO"] and stages[1]["steps"] == result.steps
    card = (out / "README.md").read_text(encoding="utf-8")
    for fact in (result.version, result.base_version, result.ratings_sha256, "beta 0.5"):
        assert fact in card
    judge = Judge.load(out / "judge", gpt=tuned_gpt)
    assert judge.version == result.judge_version
    assert not (out / CHECKPOINT).exists()
    assert json.loads((out / "tune.json").read_text())["version"] == result.version


def test_guard_stops_a_worse_model_and_resume_force_writes_it(
    base: Path, data: Path, ratings: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "gpt-guarded"
    common = [
        "--ratings",
        str(ratings),
        "--out",
        str(out),
        "--base",
        str(base),
        "--data",
        str(data),
    ]
    common += ["--no-judge", "--epochs", "1", "--lr", "1e-3", "--heldout", "0.3"]
    assert main([*common, "--max-bpc-increase", "-1"]) == 3
    err = capsys.readouterr().err
    assert "FLUENCY GUARD" in err and "No model written" in err
    assert (out / CHECKPOINT).is_file() and not (out / "model.safetensors").exists()
    assert main(common) == 2  # an unfinished run is never silently restarted
    assert "--resume" in capsys.readouterr().err
    assert main([*common, "--max-bpc-increase", "-1", "--resume", "--force"]) == 0
    err = capsys.readouterr().err
    assert "resumed at step" in err and "Writing it anyway" in err
    assert (out / "model.safetensors").is_file() and not (out / CHECKPOINT).exists()


def test_an_interrupted_run_resumes_to_the_same_weights(base: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    texts = {f"k{i}": t for i, t in enumerate(SENTENCES)}
    seqs = {k: [0, *tokenizer.encode(t), 0] for k, t in texts.items()}
    pairs = [(f"k{i}", f"k{i + 1}") for i in range(0, 10, 2)]
    ref = {k: -50.0 for k in seqs}
    settings = TrainSettings(lr=1e-3, batch_size=2, epochs=3, minutes=60, warmup_steps=2)

    def trainer(path: Path) -> DpoTrainer:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        return DpoTrainer(model, pairs, seqs, ref, tokenizer.pad_token_id, settings, path)

    whole = trainer(tmp_path / "a.pt")
    whole.run()
    broken = trainer(tmp_path / "b.pt")
    step = broken.step
    broken.step = lambda batch: (
        step(batch) if broken.state.step < 4 else (_ for _ in ()).throw(KeyboardInterrupt)
    )  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        broken.run()
    resumed = trainer(tmp_path / "c.pt")
    resumed.restore(torch.load(tmp_path / "b.pt", weights_only=False))
    assert resumed.state.step == 4
    state = resumed.run()
    assert state.step == whole.state.step and state.stopped_by == "steps"
    for a, b in zip(whole.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_no_pairs_exits_2_and_writes_nothing(
    base: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    votes = tmp_path / "liked-only.jsonl"
    votes.write_text(row("Кот пришёл.", likes=1) + "\n" + row("Кот ушёл.", method="x", dislikes=1))
    out = tmp_path / "never"
    args = ["--ratings", str(votes), "--out", str(out), "--base", str(base), "--data", str(data)]
    assert main([*args, "--no-judge"]) == 2
    err = capsys.readouterr().err
    assert (
        "no preference pairs" in err
        and "1 liked, 0 disliked" in err
        and "Nothing was written" in err
    )
    assert "unknown method (line 2)" in err
    assert not out.exists()
    assert main([*args, "--ratings", str(tmp_path / "missing.jsonl")]) == 2
    assert "no ratings file" in capsys.readouterr().err
