from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.lag import Lag
    from ..models.task_group_members_type_0 import TaskGroupMembersType0


T = TypeVar("T", bound="TaskGroup")


@_attrs_define
class TaskGroup:
    """
    Attributes:
        id (str):
        members (None | TaskGroupMembersType0): client id → its partitions; null: not known
        task (str):
        lag (Lag):
    """

    id: str
    members: None | TaskGroupMembersType0
    task: str
    lag: Lag

    def to_dict(self) -> dict[str, Any]:
        from ..models.task_group_members_type_0 import TaskGroupMembersType0  # noqa: PLC0415

        id = self.id

        members: dict[str, Any] | None
        if isinstance(self.members, TaskGroupMembersType0):
            members = self.members.to_dict()
        else:
            members = self.members

        task = self.task

        lag = self.lag.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "members": members,
                "task": task,
                "lag": lag,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.lag import Lag  # noqa: PLC0415
        from ..models.task_group_members_type_0 import TaskGroupMembersType0  # noqa: PLC0415

        d = dict(src_dict)
        id = d.pop("id")

        def _parse_members(data: object) -> None | TaskGroupMembersType0:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                members_type_0 = TaskGroupMembersType0.from_dict(data)

                return members_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskGroupMembersType0, data)

        members = _parse_members(d.pop("members"))

        task = d.pop("task")

        lag = Lag.from_dict(d.pop("lag"))

        task_group = cls(
            id=id,
            members=members,
            task=task,
            lag=lag,
        )

        return task_group
