"""How a check speaks to the learner: ExerciseFailed, shown by Jupyter as its message; a ✅ when solved."""

from __future__ import annotations


class ExerciseFailed(AssertionError):
    """Not solved yet; the message says what is wrong and how to fix it."""

    def _render_traceback_(self) -> list[str]:  # IPython: show the feedback, not a stack trace
        return [f"❌ {self}"]


def require(condition: object, feedback: str) -> None:
    """Raise :class:`ExerciseFailed` with ``feedback`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseFailed(feedback)


def solved(message: str) -> None:
    print(f"✅ {message}")
