"""The house rules a reviewer would otherwise check by hand: small files, short functions, and
imports that flow one way (bot -> generation, storage; serving never -> the lab)."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60
LONG_MARK = "# long:"  # on the line above a longer function's def (or its decorators): why


def python_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if (ROOT / name).exists()]


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions count too)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def test_no_source_file_is_over_the_limit() -> None:
    too_long = []
    for path in python_files():
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(ROOT)}: {lines}")
    assert not too_long, f"files over {MAX_FILE_LINES} lines: {too_long}"


def test_long_functions_say_why() -> None:
    unexplained = []
    for path in python_files():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            above = lines[first - 2].strip() if first >= 2 else ""
            if length > MAX_FUNCTION_LINES and not above.startswith(LONG_MARK):
                unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} {length}")
    assert not unexplained, f"functions over {MAX_FUNCTION_LINES} lines: {unexplained}"


SERVING_LAB = ("generation.training", "generation.evaluation", "generation.tune")


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("generation", ("bot", "storage", "local_telegram")),
        ("storage", ("bot", "generation", "local_telegram")),
        ("local_telegram", ("bot", "generation", "storage")),
    ],
)
def test_imports_flow_one_way(package: str, forbidden: tuple[str, ...]) -> None:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, wrong


def test_serving_code_never_imports_the_lab() -> None:
    """The bot loads generation's serving path; training and evaluation pull in what a server
    never needs, and a change there must not be able to break serving."""
    wrong = []
    lab = [ROOT / "generation" / name for name in ("training", "evaluation", "tune")]
    for path in sorted((ROOT / "generation").rglob("*.py")):
        if any(path.is_relative_to(folder) for folder in lab):
            continue
        for module in imported_modules(path):
            if module.startswith(SERVING_LAB):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, wrong
