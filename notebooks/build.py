"""Build the learners' notebooks from the lesson sources: ``python notebooks/build.py [--check]``.

Each lesson is one MyST Markdown notebook in ``notebooks/lessons/`` (open it in JupyterLab with
jupytext: right-click → Open With → Jupytext Notebook; run and edit it there). An exercise is
one code cell tagged ``exercise`` that holds the reference solution, with the learner's
template marked inside it, in the spirit of nbgrader::

    topic = "my-first-topic"            # shared: in both versions
    ### BEGIN SOLUTION
    admin.create_topics([...])          # solution only
    ### END SOLUTION
    ### BEGIN TEMPLATE
    # partitions = ...                  # template only, written commented out ("# " is removed)
    ### END TEMPLATE

The next cell, tagged ``check``, judges it. This script writes ``notebooks/NN_*.ipynb`` (the
templates learners open) and ``notebooks/solutions/NN_*.ipynb`` (the solutions), without
outputs and with the same cell ids, so both can be committed and diffed. ``--check`` exits 1
when a committed notebook differs from what its lesson builds (CI runs it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
import nbformat

HERE = Path(__file__).resolve().parent
LESSONS = HERE / "lessons"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN TEMPLATE", "### END TEMPLATE")
METADATA = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python", "pygments_lexer": "ipython3"}}


class LessonError(ValueError):
    """A lesson source breaks the exercise conventions above; the message names the lesson and cell."""


def split_exercise(source: str, where: str) -> tuple[str, str]:
    """``(template, solution)`` of one exercise cell's source."""
    template: list[str] = []
    solution: list[str] = []
    block = None
    for line in source.split("\n"):
        marker = line.strip()
        if marker in MARKERS:
            opening = marker.startswith("### BEGIN")
            if opening == (block is not None) or (not opening and marker.split()[-1] != block):
                raise LessonError(f"{where}: {marker!r} out of order; open and close each block once.")
            block = marker.split()[-1] if opening else None
        elif block == "SOLUTION":
            solution.append(line)
        elif block == "TEMPLATE":
            if line and not line.startswith("#"):
                raise LessonError(f"{where}: template lines are written commented out ('# '): {line!r}")
            template.append(line[2:] if line.startswith("# ") else line[1:])
        else:
            template.append(line)
            solution.append(line)
    if block is not None:
        raise LessonError(f"{where}: '### BEGIN {block}' is never closed.")
    if template == solution:
        raise LessonError(f"{where}: an exercise needs a '### BEGIN SOLUTION' block the template leaves out.")
    return "\n".join(template).strip("\n"), "\n".join(solution).strip("\n")


def build_notebook(lesson: Path, solved: bool) -> nbformat.NotebookNode:
    """The template (``solved=False``) or solution notebook of one lesson source."""
    source = jupytext.read(lesson)
    cells = []
    for index, cell in enumerate(source.cells):
        where = f"{lesson.name}, cell {index}"
        tags = cell.metadata.get("tags", [])
        if cell.cell_type == "code" and "exercise" in tags:
            following = source.cells[index + 1] if index + 1 < len(source.cells) else None
            if following is None or "check" not in following.metadata.get("tags", []):
                raise LessonError(f"{where}: an exercise cell must be followed by its check cell (tag 'check').")
            template, solution = split_exercise(cell.source, where)
            text = solution if solved else template
        elif any(marker in cell.source for marker in MARKERS):
            raise LessonError(f"{where}: solution/template markers outside a cell tagged 'exercise'.")
        else:
            text = cell.source
        metadata = {"tags": tags} if tags else {}
        new = (nbformat.v4.new_code_cell(text, metadata=metadata) if cell.cell_type == "code"
               else nbformat.v4.new_markdown_cell(text, metadata=metadata))
        new["id"] = f"cell-{index:02d}"   # the same ids in both versions, stable across rebuilds
        cells.append(new)
    return nbformat.v4.new_notebook(cells=cells, metadata=METADATA)


def _text(notebook: nbformat.NotebookNode) -> str:
    text = nbformat.writes(notebook)
    return text if text.endswith("\n") else text + "\n"


def targets(root: Path = HERE) -> dict[Path, nbformat.NotebookNode]:
    """Every notebook the lessons build, by the path it is written to under ``root``."""
    built = {}
    for lesson in sorted(LESSONS.glob("[0-9][0-9]_*.md")):
        built[root / f"{lesson.stem}.ipynb"] = build_notebook(lesson, solved=False)
        built[root / "solutions" / f"{lesson.stem}.ipynb"] = build_notebook(lesson, solved=True)
    return built


def stale(root: Path = HERE) -> list[str]:
    """Notebooks under ``root`` that are missing, out of date, or left over from a removed lesson."""
    built = targets(root)
    problems = [f"{path.relative_to(root)} is out of date" for path, notebook in built.items()
                if not path.exists() or path.read_text() != _text(notebook)]
    on_disk = set(root.glob("[0-9][0-9]_*.ipynb")) | set((root / "solutions").glob("[0-9][0-9]_*.ipynb"))
    problems += [f"{path.relative_to(root)} has no lesson source" for path in sorted(on_disk - set(built))]
    return problems


def build(root: Path = HERE) -> None:
    """Write every template and solution notebook, and remove those whose lesson is gone."""
    built = targets(root)
    for path, notebook in built.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_text(notebook))
    for leftover in set(root.glob("[0-9][0-9]_*.ipynb")) | set((root / "solutions").glob("[0-9][0-9]_*.ipynb")):
        if leftover not in built:
            leftover.unlink()


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        problems = stale()
        print("\n".join(problems) or "notebooks are up to date with notebooks/lessons/")
        sys.exit(1 if problems else 0)
    build()
    print(f"built {len(targets())} notebooks from "
          f"{LESSONS.relative_to(Path.cwd()) if LESSONS.is_relative_to(Path.cwd()) else LESSONS}")
