"""Evaluation: bits per character, n-gram baselines, joke checks, diversity, a tiny full run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.evaluation.baselines import KneserNeyTrigramLM, UnigramLM
from generation.evaluation.corpus import starting_words
from generation.evaluation.details import main
from generation.evaluation.details_markdown import existing_notes, render_markdown, write_report
from generation.evaluation.metrics import (
    distinct_n,
    ends_at_sentence_end,
    has_repeated_trigram,
    joke_checks,
    normalize_text,
    self_bleu,
    sentence_bleu,
    starts_with_word,
)
from generation.evaluation.pipeline import EvalConfig, run
from generation.gpt.scoring import bits_per_char, encode_jokes, lm_sequence_bits
from generation.postprocess import model_wrote_sentence_end
from tests.diffuseq_helpers import tiny_config
from tests.fixtures_models import SENTENCES, make_tiny_tokenizer, tiny_gpt2

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(make_tiny_tokenizer(tmp_path_factory.mktemp("tok")))


def _gpt(tokenizer, n_positions: int = 64, seed: int = 0):
    """One layer, 16 wide: the scoring tests need a model, not a good one."""
    return tiny_gpt2(tokenizer, n_positions=n_positions, n_embd=16, n_layer=1, seed=seed).eval()


# -- bits per character -----------------------------------------------------------------------


def test_uniform_model_bpc_is_log2_vocab_times_tokens_over_chars(tokenizer) -> None:
    """A model whose logits are all zero is uniform: every token costs exactly log2(V) bits."""
    model = _gpt(tokenizer)
    with torch.no_grad():
        model.transformer.wte.weight.zero_()  # tied output layer: all logits 0
    texts = [normalize_text(t) for t in SENTENCES[:5]]
    seqs = encode_jokes(tokenizer, texts)
    bits = lm_sequence_bits(model, seqs, batch_size=2, pad_id=tokenizer.pad_token_id)
    V = model.config.vocab_size
    for b, s in zip(bits, seqs, strict=True):
        assert b == pytest.approx(math.log2(V) * (len(s) - 1), rel=1e-5)
    tokens = sum(len(s) - 1 for s in seqs)  # the joke's tokens + the final end-of-text token
    expected = math.log2(V) * tokens / sum(len(t) + 1 for t in texts)
    assert bits_per_char(bits, texts) == pytest.approx(expected, rel=1e-5)


def test_batched_padded_scoring_equals_one_by_one(tokenizer) -> None:
    model = _gpt(tokenizer, seed=3)
    seqs = encode_jokes(tokenizer, SENTENCES)
    batched = lm_sequence_bits(model, seqs, batch_size=5, pad_id=tokenizer.pad_token_id)
    for b, s in zip(batched, seqs, strict=True):
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([s])).logits[0, :-1], -1)
        manual = -sum(float(logp[i, s[i + 1]]) for i in range(len(s) - 1)) / math.log(2)
        assert b == pytest.approx(manual, rel=1e-4)


def test_sequences_longer_than_the_context_are_scored_in_windows(tokenizer) -> None:
    model = _gpt(tokenizer, n_positions=8)
    with torch.no_grad():
        model.transformer.wte.weight.zero_()
    seq = encode_jokes(tokenizer, [SENTENCES[1] + " " + SENTENCES[2]])[0]
    assert len(seq) > 8
    [bits] = lm_sequence_bits(model, [seq], pad_id=tokenizer.pad_token_id)
    assert bits == pytest.approx(math.log2(model.config.vocab_size) * (len(seq) - 1), rel=1e-5)


def test_bits_per_char_counts_one_end_token_per_joke() -> None:
    assert bits_per_char([9.0, 3.0], ["ab", "c"]) == pytest.approx(12.0 / 5)
    with pytest.raises(ValueError):
        bits_per_char([1.0], ["a", "b"])


def test_normalize_text_keeps_single_line_breaks() -> None:
    assert normalize_text("  - Да,\t\tдоктор.  \n\n\n -  Нет. ") == "- Да, доктор.\n- Нет."


# -- n-gram baselines -------------------------------------------------------------------------

TRAIN = [[0, 5, 6, 7, 0], [0, 5, 6, 8, 0], [0, 6, 7, 5, 6, 0], [0, 9, 0]]
V = 12


def test_unigram_normalises_and_matches_add_k() -> None:
    lm = UnigramLM(TRAIN, V, k=0.5)
    p = lm.probs()
    assert p.sum() == pytest.approx(1.0)
    events = sum(len(s) - 1 for s in TRAIN)  # the leading end token is not predicted
    assert p[6] == pytest.approx((4 + 0.5) / (events + 0.5 * V))
    assert lm.sequence_bits([0, 6, 0]) == pytest.approx(-math.log2(p[6]) - math.log2(p[0]))


@pytest.mark.parametrize("discounts", [(0.75, 0.75, 0.75), (0.3, 0.9, 1.0), (1.0, 0.5, 0.1)])
def test_kneser_ney_conditionals_sum_to_one(discounts) -> None:
    lm = KneserNeyTrigramLM(TRAIN, V, discounts)
    w = np.arange(V)
    # Seen trigram histories, a seen bigram history with an unseen pair, and unseen ones.
    for u, v in [(0, 0), (5, 6), (0, 5), (6, 7), (9, 5), (11, 6), (11, 11), (0, 9)]:
        p = lm.prob(np.full(V, u), np.full(V, v), w)
        assert p.sum() == pytest.approx(1.0, abs=1e-9), (u, v)
        assert (p > 0).all()


def test_kneser_ney_prefers_seen_continuations_and_scores_corpora_consistently() -> None:
    lm = KneserNeyTrigramLM(TRAIN, V)
    assert lm.prob([5], [6], [7])[0] > lm.prob([5], [6], [9])[0]
    seqs = [[0, 5, 6, 7, 0], [0, 11, 0]]
    assert lm.corpus_bits(seqs) == pytest.approx([lm.sequence_bits(s) for s in seqs])


# -- joke checks ------------------------------------------------------------------------------


def test_joke_checks_on_handcrafted_strings() -> None:
    good = "Кот пришёл домой и сказал: «Молоко кончилось!»"
    assert joke_checks(good, "кот").valid
    assert not starts_with_word("Котлета упала на пол.", "Кот")
    assert starts_with_word("— Доктор, я умру?", "Доктор")
    assert not joke_checks("Кот пришёл домой и сказал, что", "Кот").ends
    assert ends_at_sentence_end("Кот сказал: «Мяу?»")
    assert ends_at_sentence_end("Кот ушёл…")
    assert not joke_checks("Кот ушёл домой и не вернулся…", "Кот", natural_end=False).valid
    assert has_repeated_trigram("Кот ел рыбу, а потом кот ел рыбу снова.")
    assert not has_repeated_trigram("Кот ел рыбу, а собака ела кота.")
    assert not joke_checks("Кот ушёл.", "Кот").length_ok  # 9 characters
    assert not joke_checks("Кот " + "очень " * 40 + "устал.", "Кот").length_ok
    assert joke_checks("Кот" + " а" * 8 + " б.", "Кот").length_ok  # exactly 20 characters


def test_model_wrote_sentence_end_tells_the_ellipsis_fallback_apart() -> None:
    assert model_wrote_sentence_end("Кот пришёл. А потом ушёл и", "Кот")
    assert not model_wrote_sentence_end("Кот пришёл домой и сказал", "Кот")
    assert not model_wrote_sentence_end("<|endoftext|>Кот.", "Кот")  # only the prompt's own dot


# -- diversity --------------------------------------------------------------------------------


def test_distinct_n_on_handcrafted_lists() -> None:
    texts = ["кот ел рыбу", "кот ел мясо"]
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)
    assert distinct_n(["Кот, кот!"], 1) == pytest.approx(1 / 2)  # case and punctuation ignored
    assert distinct_n([], 2) == 0.0


def test_sentence_bleu_by_hand() -> None:
    hyp = ["a", "b", "c", "d", "e"]
    assert sentence_bleu(hyp, [hyp]) == pytest.approx(1.0)
    # 3/5 unigrams, 1/4 bigrams, 0/3 trigrams -> 0.1/3, 0/2 -> 0.1/2; equal lengths, no penalty.
    ref = ["a", "b", "x", "y", "c"]
    expected = math.exp(
        (math.log(3 / 5) + math.log(1 / 4) + math.log(0.1 / 3) + math.log(0.1 / 2)) / 4
    )
    assert sentence_bleu(hyp, [ref]) == pytest.approx(expected)
    # Brevity penalty: a 2-word hypothesis against a 4-word reference.
    short = sentence_bleu(["a", "b"], [["a", "b", "c", "d"]])
    bp = math.exp(1 - 4 / 2)
    assert short == pytest.approx(bp * math.exp((0 + 0 + math.log(0.1) + math.log(0.1)) / 4))


def test_self_bleu_identical_vs_disjoint() -> None:
    same = ["кот ел рыбу и спал", "кот ел рыбу и спал", "кот ел рыбу и спал"]
    assert self_bleu([same]) == pytest.approx(1.0)
    apart = ["кот ел рыбу вчера днём", "собака пила воду из лужи", "слон видел мышь на кухне"]
    assert self_bleu([apart]) < 0.05  # no shared word: NLTK's BLEU is 0
    assert self_bleu([same[:1], []]) == 0.0  # groups of one are skipped


def test_starting_words_are_unique_ordered_and_skip_excluded() -> None:
    texts = ["- Доктор, я умру?", "Кот ел.", "доктор пришёл.", "2 кота.", "Жена спит.", "Кот спит."]
    assert starting_words(texts, 5, exclude=["Жена"]) == ["Доктор", "Кот", "кота"]
    assert starting_words(texts, 1) == ["Доктор"]


# -- end to end -------------------------------------------------------------------------------


def _write_splits(data: Path) -> Path:
    """A prepared-data folder of the four splits, made of the fixture sentences."""
    data.mkdir()
    for name, rows in {
        "train": SENTENCES * 3,
        "valid": SENTENCES[:4],
        "test": SENTENCES[4:],
        "gold": SENTENCES[:3],
    }.items():
        (data / f"{name}.jsonl").write_text(
            "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in rows),
            encoding="utf-8",
        )
    return data


def _save_tiny_diffuseq(tokenizer_dir: Path, folder: Path) -> Path:
    """A random one-layer DiffuSeq checkpoint on the tiny GPT's tokenizer."""
    from transformers import AutoTokenizer

    from generation.diffuseq.checkpoint import save_pretrained
    from generation.diffuseq.model import DiffuSeqModel

    dq_tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = tiny_config(dq_tok, emb_dim=8, hidden=32, layers=1, ffn=64, time_dim=16)
    torch.manual_seed(0)
    save_pretrained(DiffuSeqModel(cfg).eval(), dq_tok, folder)
    return folder


def test_tiny_end_to_end_run_writes_markdown(tiny_gpt_dir: Path, tmp_path: Path) -> None:
    config = EvalConfig(
        data=_write_splits(tmp_path / "data"),
        gpt=tiny_gpt_dir,
        diffuseq=_save_tiny_diffuseq(tiny_gpt_dir, tmp_path / "dq"),
        words=3,
        nouns=2,
        latency_words=2,
        diversity_words=2,
        samples_per_word=2,
        sweep_words=3,
        full_steps_words=1,
        sweep_latency_words=1,
        steps=(6, 3),
        diffuseq_sampler="dpm",
        threads=1,
    )
    report = run(config, progress=lambda _: None)
    assert set(report.main) == {"gpt", "gpt-sample", "diffuseq"}
    assert report.main["gpt"]["n"] == 5 and len(report.samples["gpt"]) == 5
    # Alone or batched with others, a request gets the same joke.
    assert all(row["same_text_alone_and_batched"] == 1.0 for row in report.main.values())
    assert report.main["gpt"]["latency_n"] == 2
    assert 0.0 < report.bpc["bpc"]["gpt"]["test"] < 20
    # int8 weights cost little: within 5% of the float model.
    assert report.bpc["bpc"]["gpt-int8"]["test"] == pytest.approx(
        report.bpc["bpc"]["gpt"]["test"], rel=0.05
    )
    assert report.bpc["bpc"]["trigram-kn"]["gold"] < report.bpc["bpc"]["unigram"]["gold"]
    assert report.main["diffuseq"]["model_started"] is not None
    assert set(report.diversity) == {"gpt-sample", "diffuseq"}
    # The preset (dpm, 20 steps here) sweeps steps; renoise runs once at the preset's steps.
    assert [(r["sampler"], r["steps"], r["words"]) for r in report.sweep] == [
        ("dpm", 6, 1),
        ("dpm", 3, 1),
        ("dpm", 3, 3),
        ("renoise", 10, 3),
    ]
    assert report.sweep[0]["latency_extrapolated"] and not report.sweep[1]["latency_extrapolated"]

    out = tmp_path / "QUALITY.md"
    out.write_text("old\n<!-- notes:start -->\nkeep me\n<!-- notes:end -->\n", encoding="utf-8")
    write_report(report, out, "python -m generation.evaluation.details --test")
    text = out.read_text(encoding="utf-8")
    assert "keep me" in text and "| our GPT (float32, as trained) |" in text
    assert "| our GPT as served (int8 weights) |" in text and "## 3. Sample outputs" in text
    assert existing_notes(out) == "keep me"
    saved = out.with_suffix(".json")
    assert json.loads(saved.read_text())["main"]["gpt"]["n"] == 5
    # Re-rendering from the saved JSON gives the same markdown without running a model.
    assert main(["--render", str(saved), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == text
    assert "python -m generation.evaluation.details --test" in render_markdown(
        report, "python -m generation.evaluation.details --test"
    )


def test_continues_word_flags_a_glued_starting_word() -> None:
    from generation.evaluation.metrics import continues_word

    assert continues_word("Мужчина пришёл домой.", "Муж")
    assert not continues_word("Муж пришёл домой.", "Муж")
    assert not continues_word("Жена пришла.", "Муж")


def test_word_doubled_flags_a_repeated_starting_word() -> None:
    from generation.evaluation.metrics import word_doubled

    assert word_doubled("Кот - Кот, ты где?\n- Дома.", "Кот")
    assert word_doubled("Доброе утро - Доброе утро!", "доброе утро")
    assert not word_doubled("Кот пришёл, а кот ушёл.", "Кот")


def test_markdown_of_a_bare_report_leaves_the_optional_sections_out(tmp_path: Path) -> None:
    """No diversity, no sweep, no `gpt` row, no models: every template field is still filled."""
    from generation.evaluation.pipeline import Report

    bpc = {
        "bpc": {"gpt": {"test": 1.5, "gold": 2.5}, "trigram-kn": {}, "unigram": {}},
        "jokes": {"test": 1, "gold": 1},
        "chars": {"test": 10, "gold": 10},
        "tokens": {"test": 3, "gold": 3},
        "unigram_k": 0.3,
        "kn_discounts": [0.75, 0.75, 1.0],
    }
    machine = {"date": "today", "cpu": "cpu", "cores": 2, "torch": "t", "torch_threads": 1}
    report = Report(config={"quick": True}, machine={**machine, "python": "3"}, bpc=bpc)
    text = render_markdown(report, "CMD")
    assert "### Diversity" not in text and "### DiffuSeq" not in text
    assert "quick mode" in text and "Target: bpc on gold ≤ 2.1 — 2.500: **not met**." in text
    assert "valid-joke rate" not in text
    assert "<!-- notes:start -->\n_(none yet)_\n<!-- notes:end -->" in text
    assert "$" not in text  # no template field left unfilled
    out = tmp_path / "QUALITY.json"
    write_report(report, out, "CMD")
    assert json.loads(out.read_text())["config"]["command"] == "CMD"
    assert not out.with_suffix(".md").exists()
