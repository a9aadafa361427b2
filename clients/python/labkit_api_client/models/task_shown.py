from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.shown import Shown


T = TypeVar("T", bound="TaskShown")


@_attrs_define
class TaskShown:
    """What the page shows of a task's answer: a title, a layout, rows, the words for none.

    Attributes:
        title (str):
        layout (str):
        empty (str):
        rows (list[Shown]):
    """

    title: str
    layout: str
    empty: str
    rows: list[Shown]

    def to_dict(self) -> dict[str, Any]:
        title = self.title

        layout = self.layout

        empty = self.empty

        rows = []
        for rows_item_data in self.rows:
            rows_item = rows_item_data.to_dict()
            rows.append(rows_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "title": title,
                "layout": layout,
                "empty": empty,
                "rows": rows,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.shown import Shown  # noqa: PLC0415

        d = dict(src_dict)
        title = d.pop("title")

        layout = d.pop("layout")

        empty = d.pop("empty")

        rows = []
        _rows = d.pop("rows")
        for rows_item_data in _rows:
            rows_item = Shown.from_dict(rows_item_data)

            rows.append(rows_item)

        task_shown = cls(
            title=title,
            layout=layout,
            empty=empty,
            rows=rows,
        )

        return task_shown
