"""Temperature calibration: the fold is exact, the fit finds a known temperature, the folder
round-trip keeps the model loadable with `from_pretrained` and records the fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from generation.training.calibrate import (
    GRID,
    bits_by_temperature,
    calibrate_folder,
    fit_temperature,
    fold_temperature,
    main,
)
from tests.fixtures_models import SENTENCES

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _logits(model: GPT2LMHeadModel, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids).logits


@pytest.mark.parametrize("tied", [True, False])
def test_folding_divides_the_logits_exactly(tied: bool) -> None:
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=50, n_positions=16, n_embd=16, n_layer=1, n_head=2, tie_word_embeddings=tied
    )
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # a non-trivial final norm, so a wrong fold would show
        model.transformer.ln_f.bias.normal_()
    ids = torch.randint(0, 50, (3, 10))
    before = _logits(model, ids)
    fold_temperature(model, 1.25)
    torch.testing.assert_close(_logits(model, ids), before / 1.25)
    if tied:  # the input embeddings must be untouched
        assert model.get_input_embeddings().weight.data_ptr() == model.lm_head.weight.data_ptr()


def test_fold_rejects_a_non_positive_temperature(tiny_gpt_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt_dir)
    with pytest.raises(ValueError):
        fold_temperature(model, 0.0)


def test_the_fit_recovers_a_known_overconfidence(tiny_gpt_dir: Path) -> None:
    """Sequences sampled from the model at temperature 1 are best explained by the model
    itself; after its logits are multiplied by 1.5 the fit must find T ≈ 1.5."""
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt_dir)
    torch.manual_seed(1)
    start = torch.full((400, 1), tokenizer.eos_token_id)
    with torch.inference_mode():
        sampled = model.generate(
            start,
            attention_mask=torch.ones_like(start),
            do_sample=True,
            top_k=0,
            top_p=1.0,
            temperature=1.0,
            max_new_tokens=24,
            min_new_tokens=24,
            pad_token_id=tokenizer.pad_token_id,
        )
    sequences = sampled.tolist()
    grid = sorted({1.0, *GRID})
    assert grid[int(np.argmin(bits_by_temperature(model, sequences, grid)))] == pytest.approx(
        1.0, abs=0.1
    )
    fold_temperature(model, 1 / 1.5)  # overconfident: logits * 1.5
    bits = bits_by_temperature(model, sequences, grid)
    assert grid[int(np.argmin(bits))] == pytest.approx(1.5, abs=0.15)


def test_fit_never_makes_the_fitted_texts_worse(tiny_gpt_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_gpt_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_gpt_dir)
    fit = fit_temperature(model, tokenizer, SENTENCES)
    assert fit.bpc_after <= fit.bpc_before
    assert fit.jokes == len(SENTENCES) and fit.skipped == 0
    assert fit.characters == sum(len(s) + 1 for s in SENTENCES)


def test_calibrated_folder_loads_and_records_the_fit(tiny_gpt_dir: Path, tmp_path: Path) -> None:
    texts = SENTENCES[::-1]
    out = tmp_path / "cal"
    fit, saved_bpc = calibrate_folder(tiny_gpt_dir, texts, out, "test sentences")
    record = json.loads((out / "calibration.json").read_text())
    assert record["temperature"] == pytest.approx(fit.temperature)
    assert record["this_fit"]["bpc_after"] == pytest.approx(fit.bpc_after)
    assert saved_bpc == pytest.approx(fit.bpc_after, abs=1e-4)

    original = AutoModelForCausalLM.from_pretrained(tiny_gpt_dir).eval()
    calibrated = AutoModelForCausalLM.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)  # the tokenizer travelled with the weights
    ids = torch.tensor([tokenizer("Жена спрашивает мужа")["input_ids"]])
    torch.testing.assert_close(
        _logits(calibrated, ids), _logits(original, ids) / fit.temperature, rtol=1e-4, atol=1e-4
    )
    assert json.loads((out / "config.json").read_text())["prepend_bos"] is True


def test_cli_calibrates_in_place_and_multiplies_temperatures(
    tiny_gpt_dir: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "valid.jsonl").write_text(
        "".join(json.dumps({"text": s}, ensure_ascii=False) + "\n" for s in SENTENCES),
        encoding="utf-8",
    )
    model_dir = tmp_path / "model"
    assert main([str(tiny_gpt_dir), "--data", str(data), "--out", str(model_dir)]) == 0
    first = json.loads((model_dir / "calibration.json").read_text())
    assert main([str(model_dir), "--data", str(data)]) == 0  # in place, a second time
    second = json.loads((model_dir / "calibration.json").read_text())
    assert second["earlier"] == first
    assert second["temperature"] == pytest.approx(
        first["temperature"] * second["this_fit"]["temperature"]
    )
    # the second fit starts where the first ended (the tiny model memorised these sentences,
    # so its best temperature lies below the grid and each fit stops at the grid's edge)
    assert second["this_fit"]["bpc_before"] == pytest.approx(first["bpc_as_saved"], abs=1e-4)
