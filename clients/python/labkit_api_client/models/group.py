from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.group_members_type_0 import GroupMembersType0


T = TypeVar("T", bound="Group")


@_attrs_define
class Group:
    """
    Attributes:
        id (str):
        members (GroupMembersType0 | None): client id → its partitions; null: not known
    """

    id: str
    members: GroupMembersType0 | None

    def to_dict(self) -> dict[str, Any]:
        from ..models.group_members_type_0 import GroupMembersType0  # noqa: PLC0415

        id = self.id

        members: dict[str, Any] | None
        if isinstance(self.members, GroupMembersType0):
            members = self.members.to_dict()
        else:
            members = self.members

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "id": id,
                "members": members,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.group_members_type_0 import GroupMembersType0  # noqa: PLC0415

        d = dict(src_dict)
        id = d.pop("id")

        def _parse_members(data: object) -> GroupMembersType0 | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                members_type_0 = GroupMembersType0.from_dict(data)

                return members_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(GroupMembersType0 | None, data)

        members = _parse_members(d.pop("members"))

        group = cls(
            id=id,
            members=members,
        )

        return group
