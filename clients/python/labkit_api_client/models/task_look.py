from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="TaskLook")


@_attrs_define
class TaskLook:
    """
    Attributes:
        title (str):
        layout (str):
    """

    title: str
    layout: str

    def to_dict(self) -> dict[str, Any]:
        title = self.title

        layout = self.layout

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "title": title,
                "layout": layout,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        title = d.pop("title")

        layout = d.pop("layout")

        task_look = cls(
            title=title,
            layout=layout,
        )

        return task_look
