"""The byte-level BPE tokenizer (generation.training.tokenizer)."""

from __future__ import annotations

import json
from pathlib import Path

from transformers import AutoTokenizer

from generation.training.tokenizer import EOT, PAD, main, prompt_ids, train_tokenizer

TEXTS = [
    "- Доктор, у меня что-то болит.\n- Вот вам какая-то таблетка.",
    "Штирлиц надел шляпу набекрень. Набекрень ушел домой без шляпы.",
    "- Я увольняюсь.\n- Почему?\n- Решил попробовать себя в безработице.",
] * 20


def test_round_trip_and_autotokenizer(tmp_path: Path) -> None:
    tok = train_tokenizer(TEXTS, vocab_size=400, out_dir=tmp_path)
    loaded = AutoTokenizer.from_pretrained(str(tmp_path))
    assert loaded.bos_token == loaded.eos_token == loaded.unk_token == EOT
    assert loaded.pad_token == PAD and loaded.pad_token_id != loaded.eos_token_id
    for text in [*TEXTS[:3], "Emoji 😀 и ёлка, «кавычки» — тире\n- Да"]:
        ids = loaded.encode(text, add_special_tokens=False)
        assert loaded.decode(ids) == text  # byte-level: everything round-trips
    assert loaded.encode("Штирлиц", add_special_tokens=False) == tok.encode(
        "Штирлиц", add_special_tokens=False
    )
    # No special tokens are added implicitly; the bos prompt form is explicit and parses the same.
    assert loaded("Штирлиц").input_ids == loaded.encode("Штирлиц", add_special_tokens=False)
    assert prompt_ids(loaded, "Штирлиц") == loaded(EOT + "Штирлиц").input_ids
    assert loaded.decode(prompt_ids(loaded, "Штирлиц"), skip_special_tokens=True) == "Штирлиц"


def test_cli(tmp_path: Path) -> None:
    data = tmp_path / "prepared"
    data.mkdir()
    for split in ("train", "valid"):
        (data / f"{split}.jsonl").write_text(
            "".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS)
        )
    main(["--data", str(data), "--out", str(data / "tok"), "--vocab-size", "300"])
    assert len(AutoTokenizer.from_pretrained(str(data / "tok"))) == 300
