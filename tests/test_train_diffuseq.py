"""DiffuSeq training: packing jokes into rows, the trainer (runs, saves, resumes) and a tiny
model that overfits four jokes and reads them back with every sampler."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from generation.diffuseq import DiffuSeqBackend, first_word
from generation.diffuseq.checkpoint import save_pretrained
from generation.diffuseq.diffusion import Diffusion
from generation.diffuseq.model import DiffuSeqModel
from generation.diffuseq.samplers import SAMPLERS
from generation.training.diffuseq_data import (
    build_tensors,
    choose_seq_len,
    make_batch,
    tokenize_pairs,
)
from tests.diffuseq_helpers import JOKES, tiny_batch, tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_choose_seq_len_and_packing(tok_dir: Path) -> None:
    assert choose_seq_len([10] * 100) == 48
    assert choose_seq_len([53] * 95 + [200] * 5) == 56
    assert choose_seq_len([300] * 10) == 64
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = tiny_config(tokenizer)
    pairs = tokenize_pairs(tokenizer, [*JOKES, "Очень " * 40], cfg.max_src_len)
    ids, src, tgt = build_tensors(pairs, cfg.seq_len, cfg.sep_id, cfg.pad_id, cfg.eos_id)
    assert ids.shape == (len(JOKES), cfg.seq_len)  # the long joke is dropped, not cut
    row = ids[0].tolist()
    assert row[src[0] - 1] == cfg.sep_id and row[src[0] + tgt[0] - 1] == cfg.eos_id
    batch = make_batch(ids, src, tgt, 0.05)
    assert batch.weights[0, : src[0]].sum() == 0
    assert set(batch.weights[0, src[0] : src[0] + tgt[0]].tolist()) == {1.0}
    assert torch.allclose(batch.weights[0, src[0] + tgt[0] :], torch.tensor(0.05))


def test_trainer_runs_and_resumes(tok_dir: Path, tmp_path: Path) -> None:
    from generation.training import train_diffuseq as train

    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid"):
        with open(data / f"{split}.jsonl", "w", encoding="utf-8") as fh:
            for j in JOKES:
                fh.write(json.dumps({"text": j}, ensure_ascii=False) + "\n")
    common = [
        "--data",
        str(data),
        "--tokenizer",
        str(tok_dir),
        "--out",
        str(tmp_path / "model"),
        "--device",
        "cpu",
        "--preset",
        "tiny",
        "--seq-len",
        "24",
        "--eval-every",
        "10",
        "--sample-steps",
        "2",
        "--diffusion-steps",
        "200",
    ]
    run = tmp_path / "run"
    assert train.main([*common, "--run-dir", str(run), "--max-steps", "10"]) == 0
    for name in ("state.pt", "args.json", "metrics.json", "loss_curve.png"):
        assert (run / name).exists(), name
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert train.main([*common, "--resume", str(run), "--max-steps", "15"]) == 0
    state = torch.load(run / "state.pt", map_location="cpu", weights_only=False)
    assert state["step"] == 15
    backend = DiffuSeqBackend.from_pretrained(tmp_path / "model")
    assert backend.config.diffusion_steps == 200
    assert len(backend.generate(["Жена"], {"steps": 2}, [0])) == 1


@pytest.mark.slow
def test_tiny_model_overfits_and_few_step_sampler_reproduces(tok_dir: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    texts = JOKES[:4]
    cfg = tiny_config(tokenizer, seq_len=24, emb_dim=32)
    torch.manual_seed(0)
    model = DiffuSeqModel(cfg)
    diffusion = Diffusion(cfg.diffusion_steps, cfg.schedule, cfg.gamma)
    batch, _ = tiny_batch(tokenizer, cfg, texts)
    reps = 4
    big = type(batch)(
        batch.ids.repeat(reps, 1), batch.src_mask.repeat(reps, 1), batch.weights.repeat(reps, 1)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    start = time.time()
    for _ in range(400):
        out = diffusion.training_losses(model, big, generator=g)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert time.time() - start < 60
    save_pretrained(model.eval(), tokenizer, tmp_path / "m")
    backend = DiffuSeqBackend.from_pretrained(tmp_path / "m")
    prompts = [first_word(t) for t in texts]
    # Teacher-forced check: noised with the exact training process, the jokes are read back.
    model.eval()
    with torch.no_grad():
        for t in (10, 100, 500):
            tt = torch.full((batch.ids.shape[0],), t)
            zt, _ = diffusion.q_sample(model, batch, tt, torch.Generator().manual_seed(t))
            pred = model.logits(model(zt, tt)).argmax(-1)
            tgt = batch.weights == 1.0
            assert (pred[tgt] == batch.ids[tgt]).float().mean() > 0.95, t
    # Plain argmax rounding: the rules would turn the em-dash opening into the corpus's "- ".
    for sampler in SAMPLERS:
        params = {"steps": 10, "sampler": sampler, "rules": False}
        got = backend.generate_detailed(prompts, params, [0, 1, 2, 3])
        assert [s.text for s in got] == texts, sampler
        assert all(s.model_started for s in got)
    # The full T-step ancestral chain (DiffuSeq's sampler) works too.
    full = {"sampler": "ancestral", "steps": 2000, "rules": False}
    got = backend.generate(prompts[:2], full, [5, 6])
    assert got == texts[:2]
