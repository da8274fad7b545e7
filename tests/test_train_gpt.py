"""The GPT trainer (generation.training.train_gpt) on a tiny corpus: it learns, saves, loads and
resumes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

from generation.training import gpt_data, train_gpt
from generation.training.tokenizer import prompt_ids, train_tokenizer

JOKES = [
    "- Доктор, у меня болит голова.\n- Пейте таблетки.",
    "Штирлиц шёл по лесу. Лес был чужой.",
    "- Вовочка, кем ты станешь?\n- Отличником!",
    "Колобок повесился. Такие дела.",
    "- Ты кем работаешь?\n- Телохранителем.",
    "Штирлиц надел шляпу. Шляпа ушла домой.",
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("gptdata")
    data = root / "prepared"
    data.mkdir()
    for split, texts in (("train", JOKES * 8), ("valid", JOKES[:3])):
        (data / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in texts),
            encoding="utf-8",
        )
    train_tokenizer(JOKES, vocab_size=300, out_dir=root / "tok")
    return data, root / "tok"


def _args(data: Path, tok: Path, root: Path, *extra: str) -> list[str]:
    return [
        "--data", str(data), "--tokenizer", str(tok), "--out", str(root / "model"),
        "--run-dir", str(root / "run"), "--device", "cpu", "--n-layer", "1", "--n-embd", "64",
        "--n-head", "2", "--n-positions", "64", "--batch-size", "8", "--lr", "1e-2",
        "--warmup-steps", "2", "--eval-every", "10", "--log-every", "1", "--samples", "1",
        "--dropout", "0", "--no-progress", "--threads", "1", *extra,
    ]  # fmt: skip


def test_tokenize_split_and_batches(corpus: tuple[Path, Path]) -> None:
    _, tok_dir = corpus
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    split = gpt_data.tokenize_split(JOKES, tok, max_len=64)
    row = split.tokens[0, : int(split.lengths[0])].tolist()
    assert row[0] == row[-1] == tok.eos_token_id
    assert tok.decode(row[1:-1]) == JOKES[0]
    assert split.chars == sum(map(len, JOKES))
    short = gpt_data.tokenize_split(JOKES, tok, max_len=5)
    assert short.truncated == len(JOKES) and short.tokens.shape[1] == 5
    batches = gpt_data.epoch_batches(split.lengths, 4, seed=1)
    assert sorted(i for b in batches for i in b.tolist()) == list(range(len(JOKES)))
    x, labels = gpt_data.lm_batch(split, batches[0], tok.pad_token_id)
    assert ((labels == -100) == (x == tok.pad_token_id)).all()


def test_train_save_load_resume(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    data, tok = corpus
    metrics = train_gpt.main(_args(data, tok, tmp_path, "--max-steps", "20"))
    history = metrics["history"]
    assert [h["step"] for h in history] == [10, 20]
    assert history[-1]["val_loss"] < math.log(300) - 1.0  # well below a uniform guess
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    assert history[-1]["val_bpc"] > 0
    run = tmp_path / "run"
    assert (run / "loss.png").stat().st_size > 0 and (run / "trainer_state.pt").exists()
    assert json.loads((run / "args.json").read_text())["max_steps"] == 20

    out = tmp_path / "model"
    assert (out / "model.safetensors").exists() and (out / "generation_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(str(out))
    assert model.transformer.wte.weight.data_ptr() == model.lm_head.weight.data_ptr()  # tied
    with safe_open(str(out / "model.safetensors"), "pt") as fh:  # bf16 on disk, tied head once
        assert fh.get_tensor("transformer.wte.weight").dtype == torch.bfloat16
        assert "lm_head.weight" not in fh.keys()  # noqa: SIM118
    model = model.float().eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert model.generation_config.eos_token_id == tokenizer.eos_token_id
    assert model.generation_config.pad_token_id == tokenizer.pad_token_id
    x = torch.tensor([prompt_ids(tokenizer, "Штирлиц")])
    y = model.generate(x, attention_mask=torch.ones_like(x), do_sample=False, max_new_tokens=8)
    assert tokenizer.decode(y[0], skip_special_tokens=True).startswith("Штирлиц")

    resumed = train_gpt.main(_args(data, tok, tmp_path, "--max-steps", "30", "--resume", str(run)))
    assert resumed["step"] == 30
    assert [h["step"] for h in resumed["history"]] == [10, 20, 30]
    state = torch.load(run / "trainer_state.pt", weights_only=False)
    assert state["step"] == 30


def test_refuses_oversized_weights(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    data, tok = corpus
    with pytest.raises(SystemExit, match="max-weights-mb"):
        train_gpt.main(_args(data, tok, tmp_path, "--max-steps", "1", "--max-weights-mb", "0.01"))


def test_oversample_repeats_only_the_named_source() -> None:
    rows = [
        {"text": "a", "source": "koziev"},
        {"text": "b", "source": "humornet"},
        {"text": "c"},
    ]
    assert gpt_data.oversampled(rows, []) == ["a", "b", "c"]
    assert gpt_data.oversampled(rows, ["humornet=3"]) == ["a", "b", "b", "b", "c"]
    for bad in (["humornet"], ["humornet=0"], ["humornet=x"], ["anecapi=2"]):
        with pytest.raises(SystemExit):
            gpt_data.oversampled(rows, bad)


def test_fine_tune_starts_from_a_model_folder(corpus: tuple[Path, Path], tmp_path: Path) -> None:
    """--init-from continues from saved weights: its first validation is already near the end of
    the run it came from, far below a fresh model's."""
    data, tok = corpus
    base = train_gpt.main(_args(data, tok, tmp_path / "base", "--max-steps", "30"))
    fresh = train_gpt.main(
        _args(data, tok, tmp_path / "fresh", "--max-steps", "1", "--eval-every", "1")
    )
    tuned = train_gpt.main(
        _args(
            data, tok, tmp_path / "tuned", "--max-steps", "1", "--eval-every", "1",
            "--init-from", str(tmp_path / "base" / "model"), "--n-layer", "3", "--lr", "1e-4",
        )
    )  # fmt: skip
    base_loss = base["history"][-1]["val_loss"]
    assert tuned["history"][0]["val_loss"] < fresh["history"][0]["val_loss"] - 1.0
    assert tuned["history"][0]["val_loss"] < base_loss + 0.2
    config = json.loads((tmp_path / "tuned" / "model" / "config.json").read_text())
    assert config["n_layer"] == 1  # the size comes from the folder, not from the flags
