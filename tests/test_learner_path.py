"""The lab as a learner walks it: one running stack, one kernel per notebook, cells in order, twice.

The stack is started the way ``labkit lab`` starts it (``labkit up``: the broker of the session's engine, topics,
a processor, the web app), and every notebook's kernel gets the environment JupyterLab would
give it. In each notebook the learner runs the cells top to bottom; at every exercise they
run the template, then its check — which must fail with feedback —, then the reference
solution in the same kernel, then the check again — which must pass. Then they run the whole
(solved) notebook a second time in the same kernel against the same stack: no cell may fail.
"""

from __future__ import annotations

import json
import os
import queue
import signal
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager
from test_cli import Running, _stack_env

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LESSONS = sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
# The learner's order by default; LABKIT_LESSON_ORDER=reverse walks the lessons last to first on the same stack, which
# shows that no notebook needs an earlier one to have run (and that later ones leave nothing that breaks it).
if os.environ.get("LABKIT_LESSON_ORDER") == "reverse":
    LESSONS.reverse()
# Two parts, each walked in order on a stack of its own: this module takes every other lesson (00, 02, 04…) and
# tests/test_learner_path_part2.py the rest, so pytest-xdist's two workers walk both at once (--dist loadfile keeps
# each file, and its stack, on one worker). No lesson needs the one before it, as the reverse order shows.
PART_ONE, PART_TWO = LESSONS[0::2], LESSONS[1::2]
CELL_TIMEOUT_S = 300


@dataclass
class Outcome:
    """What one cell did: its error (``None`` when it ran cleanly) and everything it printed."""

    error: tuple[str, str] | None = None
    text: list[str] = field(default_factory=list)


class Kernel:
    """One IPython kernel, as JupyterLab starts it for a notebook, that runs cells and reports their outcome."""

    def __init__(self, env: dict[str, str]):
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env, cwd=str(NOTEBOOKS))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    def run(self, code: str) -> Outcome:
        outcome = Outcome()

        def collect(message: dict) -> None:
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                outcome.text.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                outcome.text.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                outcome.error = (content["ename"], content["evalue"])
                outcome.text.append("\n".join(content["traceback"]))

        try:
            reply = self.client.execute_interactive(code, timeout=CELL_TIMEOUT_S, output_hook=collect)
        except (TimeoutError, queue.Empty):
            outcome.error = ("Timeout", f"the cell ran for more than {CELL_TIMEOUT_S} s")
            self.manager.interrupt_kernel()
            return outcome
        if reply["content"]["status"] == "error" and outcome.error is None:
            outcome.error = (reply["content"]["ename"], reply["content"]["evalue"])
        return outcome

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def lab_stack():
    """``labkit up`` of this module's own, as ``labkit lab`` runs it (minus JupyterLab itself)."""
    env = _stack_env(LABKIT_STARTUP_TIMEOUT_S="60")
    stack = Running("up", env=env)
    stack.wait_for(r"ready\. Press Ctrl-C", timeout=300)
    # What a notebook kernel sees under `labkit lab`: the stack's LABKIT_* settings, exported.
    stack.kernel_env = dict(env)  # (no LABKIT_BOOTSTRAP: unset, it is localhost:<broker port> there too)
    yield stack
    assert stack.stop(signal.SIGINT) == 0, stack.output[-3000:]


def _cells(path: Path) -> list[dict]:
    return [cell for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"]


def _source(cell: dict) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _fail(notebook: str, step: str, code: str, outcome: Outcome, stack: Running) -> None:
    pytest.fail(
        f"{notebook}, {step}: {outcome.error[0]}: {outcome.error[1]}\n--- cell ---\n{code}\n"
        f"--- output ---\n{''.join(outcome.text)[-4000:]}\n"
        f"--- the stack's last lines (labkit up) ---\n{''.join(stack.lines[-40:])}",
        pytrace=False,
    )


# pytest-timeout (300 s by default) counts the module's `labkit up` (up to 300 s) in the first notebook's
# time; and a hung cell must reach Kernel.run's own limit, which reports the cell, before this one.
@pytest.mark.timeout(300 + CELL_TIMEOUT_S + 300)
@pytest.mark.parametrize("notebook", PART_ONE)
def test_a_learner_walks_the_notebook_twice(notebook, lab_stack):
    walk_twice(notebook, lab_stack)


def walk_twice(notebook: str, lab_stack: Running) -> None:
    """Walk ``notebook`` as a learner does (the module docstring), failing with the cell, its output and the stack's."""
    templates = _cells(NOTEBOOKS / f"{notebook}.ipynb")
    solutions = _cells(NOTEBOOKS / "solutions" / f"{notebook}.ipynb")
    assert [c["id"] for c in templates] == [c["id"] for c in solutions]
    kernel = Kernel(lab_stack.kernel_env)
    try:
        exercises = 0
        for index, (template, solution) in enumerate(zip(templates, solutions)):
            if "check" in _tags(template):
                continue  # run below, right after its exercise
            if "exercise" not in _tags(template):
                outcome = kernel.run(_source(solution))
                if outcome.error:
                    _fail(notebook, f"first run, cell {solution['id']}", _source(solution), outcome, lab_stack)
                continue
            exercises += 1
            check = _source(solutions[index + 1])
            assert "check" in _tags(solutions[index + 1]), f"{notebook}: exercise {template['id']} has no check cell"
            # The learner runs the template as it is, then the check: it must say what is missing.
            outcome = kernel.run(_source(template))
            if outcome.error:
                _fail(
                    notebook,
                    f"template {template['id']} (it must run, unsolved)",
                    _source(template),
                    outcome,
                    lab_stack,
                )
            feedback = kernel.run(check)
            assert feedback.error and feedback.error[0] == "ExerciseFailed", (
                f"{notebook}: the check after template {template['id']} did not fail with feedback: "
                f"{feedback.error} {''.join(feedback.text)[-1000:]}"
            )
            assert len(feedback.error[1]) > 30, f"{notebook}: feedback too thin: {feedback.error[1]!r}"
            # Then they fix it (the reference solution), in the same kernel, and check again.
            outcome = kernel.run(_source(solution))
            if outcome.error:
                _fail(notebook, f"solution {solution['id']} after its template", _source(solution), outcome, lab_stack)
            passed = kernel.run(check)
            if passed.error:
                _fail(notebook, f"check after solution {solution['id']}", check, passed, lab_stack)
            assert "✅" in "".join(passed.text), f"{notebook}: check {solution['id']} passed without saying so"
        # A learner runs the whole notebook again, top to bottom, in the same kernel.
        for cell in solutions:
            outcome = kernel.run(_source(cell))
            if outcome.error:
                _fail(notebook, f"second run, cell {cell['id']}", _source(cell), outcome, lab_stack)
        assert exercises == sum("exercise" in _tags(c) for c in solutions)
    finally:
        kernel.close()
    if notebook.startswith("05_"):  # what the notebook says the `labkit lab` terminal shows, it shows
        for line in (
            r"clip exited with code -9 \(SIGKILL\)",
            r"restarting clip in \d+ s",
            r"restarted clip \(pid \d+\)",
        ):
            lab_stack.wait_for(line, count=2, timeout=5)
