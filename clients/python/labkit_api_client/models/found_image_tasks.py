from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.kept_result import KeptResult


T = TypeVar("T", bound="FoundImageTasks")


@_attrs_define
class FoundImageTasks:
    additional_properties: dict[str, KeptResult] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:

        field_dict: dict[str, Any] = {}
        for prop_name, prop in self.additional_properties.items():
            field_dict[prop_name] = prop.to_dict()

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.kept_result import KeptResult  # noqa: PLC0415

        d = dict(src_dict)
        found_image_tasks = cls()

        additional_properties = {}
        for prop_name, prop_dict in d.items():
            additional_property = KeptResult.from_dict(prop_dict)

            additional_properties[prop_name] = additional_property

        found_image_tasks.additional_properties = additional_properties
        return found_image_tasks

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> KeptResult:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: KeptResult) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
