"""Retraining the judge with the new votes, for the tuned GPT.

The judge reads the GPT's bits per character and refuses any GPT but the one it was trained with
(`generation.judge.features.gpt_fingerprint`), so a tuned GPT needs a judge of its own: it goes to
`<out>/judge`, trained by the project's own trainer (`generation.training.train_judge`) on the
corpus's human ratings plus the cleaned votes of the ratings file, with the shipped feature set
only (comparing every candidate set again would cost several times as long and choose nothing).
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from collections.abc import Sequence
from pathlib import Path

from generation.tune.ratings import RatedJoke, write_clean

JUDGE_DIR = "judge"
FEATURES = "chars+words+fluency"


def retrain_judge(
    gpt: Path, jokes: Sequence[RatedJoke], corpus: Path, *, features: str = FEATURES
) -> str:
    """Train `<gpt>/judge` on `corpus` + `jokes`; return its version (raises on failure)."""
    from generation.training.train_judge import main as train_judge

    out = gpt / JUDGE_DIR
    with tempfile.TemporaryDirectory(prefix="tune-judge-") as tmp:
        ratings = Path(tmp) / "ratings.jsonl"
        write_clean(jokes, ratings)
        args = ["--corpus", str(corpus), "--gpt", str(gpt), "--out", str(out)]
        args += ["--ratings", str(ratings), "--features", features, "--candidates", features]
        args += ["--repeats", "3"]
        out.mkdir(parents=True, exist_ok=True)
        with contextlib.redirect_stdout(io.StringIO()):  # its summary; metrics.json has it all
            code = train_judge(args)
    if code != 0:
        raise RuntimeError(f"the judge's trainer exited {code}")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return str(metrics["version"])


__all__ = ["JUDGE_DIR", "retrain_judge"]
