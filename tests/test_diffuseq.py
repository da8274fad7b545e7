"""DiffuSeq serving: prompts and starting words, save/load, batched seeds, constrained rounding,
MBR, and the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from generation.diffuseq import DiffuSeqBackend, first_word, starts_with_prompt
from generation.diffuseq.backend import mbr_select, with_prompt
from generation.diffuseq.checkpoint import save_pretrained
from generation.diffuseq.model import DiffuSeqModel
from tests.diffuseq_helpers import tiny_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_first_word_and_prompt_check() -> None:
    assert first_word("— Доктор, у меня болит") == "Доктор"
    assert first_word("Штирлиц-младший шёл") == "Штирлиц-младший"
    assert starts_with_prompt("доктор", "— Доктор, у меня болит")
    assert starts_with_prompt("Жена", "Жена спросила")
    assert not starts_with_prompt("Жена", "Женатый мужчина")
    assert not starts_with_prompt("Жена", "Муж и жена")
    assert with_prompt("Жена", "Муж пришёл.") == ("Жена Муж пришёл.", False)
    assert with_prompt("Жена", "Жена пришла.") == ("Жена пришла.", True)


def test_save_load_identical_and_batched_equals_single(tok_dir: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = tiny_config(tokenizer)
    torch.manual_seed(0)
    model = DiffuSeqModel(cfg).eval()
    save_pretrained(model, tokenizer, tmp_path / "m")
    names = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model_type"] == "diffuseq"

    direct = DiffuSeqBackend(model, tokenizer)
    loaded = DiffuSeqBackend.from_pretrained(tmp_path / "m", device="cpu")
    assert loaded.model_id.startswith("diffuseq")
    loaded.warmup()
    prompts = ["Штирлиц", "Жена", "Доктор", "Штирлиц"]
    seeds = [1, 2, 3, 4]
    # The default preset rounds with the per-row rules of rounding.py; "rules": False is argmax.
    presets = ({"steps": 5}, {"steps": 5, "sampler": "ddim"}, {"steps": 4, "mbr": 3})
    for params in (*presets, {"steps": 5, "rules": False}):
        a = direct.generate_detailed(prompts, params, seeds)
        b = loaded.generate_detailed(prompts, params, seeds)
        assert [x.raw for x in a] == [x.raw for x in b]
        single = [
            loaded.generate_detailed([p], params, [s])[0]
            for p, s in zip(prompts, seeds, strict=True)
        ]
        assert [x.raw for x in single] == [x.raw for x in b]
    texts = loaded.generate(prompts, {"steps": 5}, seeds)
    assert all(starts_with_prompt(p, t) for p, t in zip(prompts, texts, strict=True))
    # Different seeds for the same prompt explore different samples.
    many = loaded.generate(["Штирлиц"] * 6, {"steps": 5}, list(range(6)))
    assert len(set(many)) > 1
    with pytest.raises(ValueError):
        loaded.generate(["Жена"], {"sampler": "nope"}, [0])


def test_rounder_rules(tok_dir: Path) -> None:
    """Constrained rounding: the opening is held at `- Word` or `Word`, no piece glues onto the
    word or onto punctuation, no token twice in a row, and the joke stops after a sentence end."""
    from generation.diffuseq.rounding import Rounder, TokenClasses, prompt_prefixes

    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    cfg = tiny_config(tokenizer)
    classes = TokenClasses(tokenizer, cfg.vocab_size, [cfg.sep_id])
    text = [tokenizer.decode([i]) for i in range(cfg.vocab_size)]
    word = next(i for i, t in enumerate(text) if t[:1] == " " and t[1:].isalpha() and len(t) > 3)
    piece = next(i for i, t in enumerate(text) if t.isalpha() and len(t) > 1)
    comma, dot = text.index(","), text.index(".")
    assert bool(classes.cont[piece]) and not bool(classes.glue_ok[comma])
    assert bool(classes.is_end[dot]) and not bool(classes.is_end[comma])
    spoken, plain = prompt_prefixes(tokenizer, "Жена")
    assert spoken[0] == classes.dash and tokenizer.decode(spoken) == "- Жена"
    src_len, length = len(plain) + 1, 16
    ids = torch.full((1, length), cfg.pad_id)
    ids[0, :src_len] = torch.tensor([*plain, cfg.sep_id])
    src = torch.arange(length)[None] < src_len
    rounder = Rounder(classes, [(spoken, plain)], [src_len], [cfg.eos_id, cfg.pad_id])
    logits = torch.zeros(1, length, cfg.vocab_size)
    logits[0, :, word] += 1.0
    logits[0, :, dot] += 0.5
    logits[0, src_len, classes.dash] = 5.0  # the model opens a dialogue turn
    s = src_len + len(spoken)
    # Wanted by argmax after the word: a glued piece, a comma twice, a piece glued onto the
    # comma, a word, then the end token with no sentence end before it.
    for i, t in enumerate([piece, comma, comma, piece, word, cfg.eos_id]):
        logits[0, s + i, t] = 5.0
    tok = rounder(logits, ids, src)[0].tolist()
    assert tok[:src_len] == ids[0, :src_len].tolist() and tok[src_len:s] == spoken
    assert tok[s] != piece  # nothing glued onto the starting word
    assert tok[s + 1] == comma and tok[s + 2] != comma
    out = tokenizer.decode([t for t in tok[src_len:] if t not in (cfg.eos_id, cfg.pad_id)])
    assert out.startswith("- Жена") and out.rstrip().endswith("."), out


def test_mbr_picks_consensus() -> None:
    cands = ["кот ел рыбу", "кот ел рыбу дома", "совсем другое что-то", "кот ел мясо"]
    assert mbr_select(cands) in (0, 1)
    assert mbr_select(["один"]) == 0


SHIPPED = Path(__file__).resolve().parents[1] / "models" / "diffuseq"
SHIPPED_PROMPTS = ["Штирлиц", "Доктор", "Жена", "Вовочка", "Программист", "Молоко"]


def shipped_sample_checks(backend: DiffuSeqBackend, params: dict) -> dict[str, float]:
    """Cheap word-salad detectors on the shipped model: share of samples that stop with EOS,
    start with the prompt, contain no broken byte (U+FFFD), and the mean length in characters."""
    from generation.diffuseq.data import prompt_rows

    c = backend.config
    seeds = list(range(len(SHIPPED_PROMPTS)))
    samples = backend.generate_detailed(SHIPPED_PROMPTS, params, seeds)
    ids, mask = prompt_rows(
        backend.tokenizer, SHIPPED_PROMPTS, c.seq_len, c.max_src_len, c.sep_id, c.pad_id
    )
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    p = {"sampler": "renoise", "steps": 20, "clamp": None, **params}
    with torch.inference_mode():
        toks = backend.diffusion.sample(
            backend.model, ids, mask, gens, p["sampler"], p["steps"], p["clamp"]
        )
    n = len(samples)
    return {
        "eos": sum(bool((toks[i][~mask[i]] == c.eos_id).any()) for i in range(n)) / n,
        "started": sum(s.model_started for s in samples) / n,
        "clean": sum("\ufffd" not in s.text for s in samples) / n,
        "chars": sum(len(s.raw) for s in samples) / n,
    }


@pytest.fixture(scope="module")
def shipped() -> DiffuSeqBackend:
    if not (SHIPPED / "model.safetensors").exists():
        pytest.skip("no shipped model")
    return DiffuSeqBackend.from_pretrained(SHIPPED)


def test_shipped_model_writes_jokes_not_word_salad(shipped: DiffuSeqBackend) -> None:
    """The regression test for the unclamped-sampler bug: with {"sampler": "dpm", "clamp": False}
    this model writes broken words over nearly all positions and rarely starts with the word."""
    got = shipped_sample_checks(shipped, {"steps": 10})
    assert got["eos"] == 1.0 and got["clean"] == 1.0, got
    assert got["started"] >= 0.66 and got["chars"] < 150, got


def test_shipped_model_output_is_pinned(shipped: DiffuSeqBackend) -> None:
    """The served preset writes the same joke for the same word and seed as it always did (the
    outputs of the sampler code before it was split into samplers.py)."""
    got = shipped.generate_detailed(["Молоко", "Жена"], {}, [1, 4])
    assert [s.raw for s in got] == [
        "- Молоко, в пл есть?\n- Почему?\n- Да.\n- А что?\n- А, у меня.",
        "- Жена, я же я не могу, у меня!\n- А что ты?\n- А ты что ты?\n"
        "- А что, я не что, не что я!",
    ]
