from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..models.kept_result_status import KeptResultStatus, check_kept_result_status

if TYPE_CHECKING:
    from ..models.task_shown import TaskShown


T = TypeVar("T", bound="KeptResult")


@_attrs_define
class KeptResult:
    """One task's result as the history keeps it: its state, title, summary and ``shown``.

    Attributes:
        status (KeptResultStatus):
        title (str):
        summary (None | str):
        shown (None | TaskShown):
        error (None | str):
    """

    status: KeptResultStatus
    title: str
    summary: None | str
    shown: None | TaskShown
    error: None | str

    def to_dict(self) -> dict[str, Any]:
        from ..models.task_shown import TaskShown  # noqa: PLC0415

        status: str = self.status

        title = self.title

        summary: None | str
        summary = self.summary

        shown: dict[str, Any] | None
        if isinstance(self.shown, TaskShown):
            shown = self.shown.to_dict()
        else:
            shown = self.shown

        error: None | str
        error = self.error

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "status": status,
                "title": title,
                "summary": summary,
                "shown": shown,
                "error": error,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.task_shown import TaskShown  # noqa: PLC0415

        d = dict(src_dict)
        status = check_kept_result_status(d.pop("status"))

        title = d.pop("title")

        def _parse_summary(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        summary = _parse_summary(d.pop("summary"))

        def _parse_shown(data: object) -> None | TaskShown:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                shown_type_0 = TaskShown.from_dict(data)

                return shown_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | TaskShown, data)

        shown = _parse_shown(d.pop("shown"))

        def _parse_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error = _parse_error(d.pop("error"))

        kept_result = cls(
            status=status,
            title=title,
            summary=summary,
            shown=shown,
            error=error,
        )

        return kept_result
