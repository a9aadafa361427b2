"""Lint, format and types: ruff and mypy over the code, configured in pyproject.toml, run with the tests."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUMMARY_MAX = 100  # characters in a docstring's first line, from the opening quotes


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=280)


def test_ruff_finds_nothing_in_the_package_the_tests_and_every_lesson_cell():
    """The built solutions hold the code of every lesson cell, so lessons are linted too."""
    result = _run("ruff", "check", "labkit", "services", "tests", "notebooks/solutions", "notebooks/build.py")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted_with_ruff():
    result = _run("ruff", "format", "--check", ".")
    assert result.returncode == 0, "run `.venv/bin/ruff format .`\n" + result.stdout + result.stderr


@pytest.mark.timeout(300)
def test_mypy_finds_no_type_errors_in_labkit():
    result = _run("mypy")  # files and options: [tool.mypy] in pyproject.toml
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr


def test_every_docstring_summary_in_labkit_is_one_short_line():
    """Every docstring in labkit (module, class, function) opens with a summary of at most 100 characters.

    The summary (the first line, counted from the opening quotes) is what help(), IDE tooltips and
    ``pydoc``'s one-line listings show; there a long one wraps or is cut off. Ruff's D205 keeps it to
    one line; this keeps that line short. Detail belongs in the body, after a blank line.
    """
    too_long = []
    for path in sorted((ROOT / "labkit").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            docstring = ast.get_docstring(node, clean=False)
            summary = (docstring or "").split("\n", 1)[0]
            if len(summary) > SUMMARY_MAX:
                where = f"{path.relative_to(ROOT)}:{node.body[0].lineno}"
                too_long.append(f"{where}: {len(summary)} characters: {summary}")
    assert not too_long, (
        f"shorten these docstring summaries to {SUMMARY_MAX} characters or fewer (rewrite them; move detail "
        "into the body, after a blank line):\n" + "\n".join(too_long)
    )
