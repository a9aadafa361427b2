"""Every notebook exercise: its check fails with feedback on the untouched template and passes on the reference solution.

Each exercise runs against a broker of its own (exercise topic names are fixed, as a learner
sees them), with the code earlier notebook cells would have run (``Exercise.given``).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from confluent_kafka import Consumer

from labkit.broker import EmbeddedBroker, free_port
from labkit.exercises import ExerciseFailed

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
_spec = importlib.util.spec_from_file_location("build_notebooks", NOTEBOOKS / "build_notebooks.py")
build_notebooks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_notebooks)

CASES = [(notebook, exercise) for notebook, exercises in build_notebooks.EXERCISES.items() for exercise in exercises]


@pytest.fixture
def own_broker(monkeypatch):
    with EmbeddedBroker(free_port()) as broker:
        monkeypatch.setenv("LABKIT_BOOTSTRAP", broker.bootstrap_servers)
        yield broker


def _run(code: str, namespace: dict) -> None:
    exec(compile(code, "<exercise>", "exec"), namespace)


@pytest.mark.parametrize("notebook, exercise", CASES, ids=[f"{n}:{e.title}" for n, e in CASES])
def test_check_fails_on_the_template_and_passes_on_the_solution(notebook, exercise, own_broker, monkeypatch, capsys):
    template = {}
    try:
        _run(exercise.given, template)
        _run(exercise.template, template)
        with pytest.raises(ExerciseFailed) as feedback:
            _run(exercise.check, template)
    finally:
        _clean_up(exercise, template)
    assert len(str(feedback.value)) > 30  # a sentence that says what to do, not a bare assertion
    assert feedback.value._render_traceback_()[0].startswith("❌")

    # The solution gets a broker of its own: nothing the template left behind can influence it.
    with EmbeddedBroker(free_port()) as fresh:
        monkeypatch.setenv("LABKIT_BOOTSTRAP", fresh.bootstrap_servers)
        solved = {}
        try:
            _run(exercise.given, solved)
            _run(exercise.solution, solved)
            _run(exercise.check, solved)
        finally:
            _clean_up(exercise, solved)
    assert "✅" in capsys.readouterr().out


def _clean_up(exercise, namespace: dict) -> None:
    """What the notebook's last cell stops (pipelines, clients), and consumers a template left open
    (a learner would restart the kernel)."""
    if exercise.cleanup and "pipeline" in namespace:
        _run(exercise.cleanup, namespace)
    for value in namespace.values():
        if isinstance(value, Consumer):
            try:
                value.close()
            except RuntimeError:  # already closed
                pass


def test_notebooks_on_disk_match_their_source(tmp_path):
    """The .ipynb files are generated: edit notebooks/build_notebooks.py, then run it."""
    build_notebooks.build(tmp_path)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.ipynb"))
    assert generated == sorted(p.relative_to(NOTEBOOKS) for p in NOTEBOOKS.rglob("*.ipynb")
                               if ".ipynb_checkpoints" not in p.parts)
    for relative in generated:
        fresh = json.loads((tmp_path / relative).read_text())
        committed = json.loads((NOTEBOOKS / relative).read_text())
        assert [c["source"] for c in fresh["cells"]] == [c["source"] for c in committed["cells"]], relative


def test_shipped_notebooks_hold_templates_not_solutions():
    for notebook, exercises in build_notebooks.EXERCISES.items():
        sources = "\n".join("".join(c["source"]) for c in json.loads((NOTEBOOKS / f"{notebook}.ipynb").read_text())["cells"])
        for exercise in exercises:
            assert exercise.template in sources and exercise.solution not in sources
