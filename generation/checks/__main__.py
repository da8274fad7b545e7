"""Subcommands of the joke checks.

- ``python -m generation.checks check --prompt Кот "Кот кот пришёл."``: print the verdict on jokes
  given as arguments, or with ``--quality docs/QUALITY-details.md`` on the unedited samples of
  that report (section 3), so a reader can compare the checker's verdicts with their own.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from generation.checks.verdict import JokeChecker

# "- **Кот** → Кот - ... / - ..." lines of section 3, under "### method" headings.
_SAMPLE_RE = re.compile(r"^- \*\*(.+?)\*\* → (.*)$")


def quality_samples(path: Path) -> list[tuple[str, str, str]]:
    """(method, prompt, joke) for every sample in section 3 of docs/QUALITY-details.md."""
    text = path.read_text(encoding="utf-8")
    section = text.split("## 3.", 1)[-1].split("\n## ", 1)[0]
    samples: list[tuple[str, str, str]] = []
    method = ""
    for line in section.splitlines():
        if line.startswith("### "):
            method = line[4:].strip()
        elif m := _SAMPLE_RE.match(line):
            samples.append((method, m.group(1), m.group(2).replace(" / ", "\n")))
    return samples


def check_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description="Print the checks' verdict on jokes.")
    ap.add_argument("jokes", nargs="*")
    ap.add_argument("--prompt", default="")
    ap.add_argument("--quality", type=Path, help="check the samples of docs/QUALITY-details.md")
    ap.add_argument("--folder", type=Path, default=Path("models/checks"))
    args = ap.parse_args(argv)
    started = time.perf_counter()
    checker = JokeChecker.load(args.folder)
    print(f"loaded {args.folder} in {time.perf_counter() - started:.3f} s")
    if args.quality:
        samples = quality_samples(args.quality)
    else:
        samples = [("", args.prompt, joke) for joke in args.jokes]
    for method, prompt, joke in samples:
        verdict = checker.check(joke, prompt)
        mark = "ok " if verdict.ok else ("CPY" if verdict.clean else "BAD")
        print(f"{mark} {method:<10} {prompt:<12} {joke.replace(chr(10), ' / ')}")
        for problem in verdict.problems:
            print(f"      - {problem}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] != "check":
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    return check_main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
