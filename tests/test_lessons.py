"""The lesson sources and the notebooks built from them: up to date, linted, paced, and listed in the README."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
_spec = importlib.util.spec_from_file_location("lesson_build", NOTEBOOKS / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
LESSONS = sorted(build.LESSONS.glob("[0-9][0-9]_*.md"))
MAX_CELLS = 22  # code + markdown: more, and a lesson should be split


def test_built_notebooks_are_up_to_date_with_their_lessons():
    """Edit notebooks/lessons/*.md (in JupyterLab with jupytext, or any editor), then run notebooks/build.py."""
    assert build.stale() == []


def test_lessons_are_numbered_continuously_paced_and_listed_in_the_readme():
    numbers = [int(path.name[:2]) for path in LESSONS]
    assert numbers == list(range(len(LESSONS))), numbers
    readme = (ROOT / "README.md").read_text()
    for lesson in LESSONS:
        notebook = build.build_notebook(lesson, solved=True)
        assert len(notebook.cells) <= MAX_CELLS, f"{lesson.name}: {len(notebook.cells)} cells; split it"
        assert f"{lesson.stem}.ipynb" in readme, f"README's notebook table lacks {lesson.stem}"


def test_templates_hold_no_solution_and_every_exercise_is_checked():
    for lesson in LESSONS:
        template = build.build_notebook(lesson, solved=False)
        solution = build.build_notebook(lesson, solved=True)
        assert [c.id for c in template.cells] == [c.id for c in solution.cells]
        for index, (mine, theirs) in enumerate(zip(template.cells, solution.cells)):
            if "exercise" in mine.metadata.get("tags", []):
                assert mine.source != theirs.source and "BEGIN SOLUTION" not in mine.source
                following = solution.cells[index + 1]
                assert "check" in following.metadata.get("tags", []) and "labkit.exercises.check_" in following.source
            else:
                assert mine.source == theirs.source, f"{lesson.name}: cell {index} differs outside an exercise"


@pytest.mark.parametrize(
    "source, problem",
    [
        ("x = 1\n### BEGIN SOLUTION\nx = 2\n", "never closed"),
        ("### END SOLUTION\nx = 2", "out of order"),
        ("### BEGIN SOLUTION\nx = 2\n### END TEMPLATE", "out of order"),
        ("x = 1", "needs a '### BEGIN SOLUTION' block"),
        ("### BEGIN SOLUTION\nx = 2\n### END SOLUTION\n### BEGIN TEMPLATE\nx = ...\n### END TEMPLATE", "commented out"),
    ],
)
def test_broken_exercise_markers_are_refused_with_the_place(source, problem):
    with pytest.raises(build.LessonError, match=re.escape(problem)):
        build.split_exercise(source, "lesson.md, cell 3")


def test_an_exercise_splits_into_template_and_solution():
    template, solution = build.split_exercise(
        'topic = "t"\n### BEGIN SOLUTION\ncreate(topic)\n### END SOLUTION\n### BEGIN TEMPLATE\n# partitions = ...\n'
        "#\n# # a hint\n### END TEMPLATE\ncheck(topic)",
        "here",
    )
    assert solution == 'topic = "t"\ncreate(topic)\ncheck(topic)'
    assert template == 'topic = "t"\npartitions = ...\n\n# a hint\ncheck(topic)'


def test_shipped_notebooks_hold_templates():
    for lesson in LESSONS:
        shipped = json.loads((NOTEBOOKS / f"{lesson.stem}.ipynb").read_text())
        assert not any("### BEGIN" in "".join(cell["source"]) for cell in shipped["cells"])
        assert all(not cell.get("outputs") for cell in shipped["cells"] if cell["cell_type"] == "code")
