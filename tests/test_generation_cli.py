"""`python -m generation`: plain and JSON output from the tiny real model, listing, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from generation.cli import main
from generation.versions import folder_version
from settings import ROOT, get_settings


def run_cli(
    model: Path, *args: str, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "GPT_MODEL": str(model),
        "ENABLE_DIFFUSEQ": "false",
        "TORCH_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "generation", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=180,
        check=False,
    )


def test_plain_output_one_joke_per_line(tiny_gpt_dir: Path) -> None:
    result = run_cli(tiny_gpt_dir, "Молоко", "--method", "gpt", "-n", "3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("Молоко") for line in lines)
    assert len(set(lines)) > 1  # -n 3 with beam search: three different beams


def test_json_output(tiny_gpt_dir: Path) -> None:
    # a hot preset: the tiny model's samples differ, and -n gives different jokes only
    result = run_cli(
        tiny_gpt_dir,
        "Кот сказал",
        "--method",
        "gpt-sample",
        "-n",
        "2",
        "--seed",
        "5",
        "--json",
        extra_env={"GPT_TEMPERATURE": "1.5", "GPT_TOP_P": "1.0"},
    )
    assert result.returncode == 0, result.stderr
    assert "Кот сказал" in result.stdout  # ensure_ascii=False: readable Cyrillic
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    for row, seed in zip(rows, (5, 6), strict=True):
        assert set(row) == {
            "text",
            "method",
            "model",
            "params",
            "latency_ms",
            "rank",
            "candidates",
            "judge_score",
            "judge_version",
            "ended",
        }
        assert row["text"].startswith("Кот сказал")
        assert row["method"] == "gpt-sample"
        assert row["model"] == folder_version("gpt", tiny_gpt_dir)
        assert row["params"]["seed"] == seed
        assert row["params"]["do_sample"] is True
        assert row["latency_ms"] > 0


def test_words_from_stdin_one_json_line_each_in_order(tiny_gpt_dir: Path) -> None:
    words = ["Молоко", "Кот сказал", "Штирлиц", "Молоко"]
    result = run_cli(
        tiny_gpt_dir, "--method", "gpt-sample", "--json", stdin="\n".join(words) + "\n\n"
    )
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["prompt"] for row in rows] == words
    for row in rows:
        assert row["text"].startswith(row["prompt"])
        assert row["method"] == "gpt-sample"


def test_stdin_without_words_is_a_usage_error(tiny_gpt_dir: Path) -> None:
    result = run_cli(tiny_gpt_dir, "--method", "gpt", stdin="\n  \n")
    assert result.returncode == 2
    assert "no starting words" in result.stderr


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    monkeypatch.setenv("ENABLE_DIFFUSEQ", "false")
    monkeypatch.setenv("ENABLE_CLASSIC", "false")
    monkeypatch.setenv("GPT_MODEL", str(tmp_path / "no-such-model"))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def test_list_methods(cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["gpt", "gpt-sample"]
    assert json.loads(lines[0].split("\t")[2])["num_beams"] == 6


def test_missing_model_folder_is_a_clear_error(
    cli_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["Молоко", "--method", "gpt"]) == 2
    err = capsys.readouterr().err
    assert "GPT model folder not found" in err
    assert "GPT_MODEL" in err


def test_unknown_method_is_a_usage_error(cli_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["Молоко", "--method", "nope"])
    assert exit_info.value.code == 2
