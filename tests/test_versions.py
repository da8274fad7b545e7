"""Model versions change with what makes a model write, and with nothing else."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from generation.versions import folder_version


def test_a_version_follows_weights_and_tokenizer_not_the_readme(tmp_path: Path) -> None:
    folder = tmp_path / "gpt"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights-1")
    (folder / "tokenizer.json").write_text("{}")
    first = folder_version("gpt", folder)
    assert re.fullmatch(r"gpt@[0-9a-f]{6}", first)
    (folder / "README.md").write_text("notes")
    assert folder_version("gpt", folder) == first
    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy)
    assert folder_version("gpt", copy) == first  # the content, not the place
    (folder / "model.safetensors").write_bytes(b"weights-2")
    assert folder_version("gpt", folder) != first
    (copy / "tokenizer.json").write_text('{"added": 1}')
    assert folder_version("gpt", copy) not in (first, folder_version("gpt", folder))
