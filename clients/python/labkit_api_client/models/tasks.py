from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.tasks_shown import TasksShown


T = TypeVar("T", bound="Tasks")


@_attrs_define
class Tasks:
    """``GET /api/tasks``: the tasks this pipeline runs, in order, and how the page titles and draws each.

    Attributes:
        tasks (list[str]):
        shown (TasksShown):
    """

    tasks: list[str]
    shown: TasksShown

    def to_dict(self) -> dict[str, Any]:
        tasks = self.tasks

        shown = self.shown.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "tasks": tasks,
                "shown": shown,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.tasks_shown import TasksShown  # noqa: PLC0415

        d = dict(src_dict)
        tasks = cast(list[str], d.pop("tasks"))

        shown = TasksShown.from_dict(d.pop("shown"))

        tasks = cls(
            tasks=tasks,
            shown=shown,
        )

        return tasks
