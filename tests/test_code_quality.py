"""Lint, format and types: ruff and mypy over the code, configured in pyproject.toml, run with the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


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
