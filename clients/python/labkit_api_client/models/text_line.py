from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="TextLine")


@_attrs_define
class TextLine:
    """One line of text OCR read: the text, its confidence (0..1) and its box (4 corner points, pixels).

    Attributes:
        text (str):
        score (float):
        box (list[list[float]] | Unset):
    """

    text: str
    score: float
    box: list[list[float]] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        text = self.text

        score = self.score

        box: list[list[float]] | Unset = UNSET
        if not isinstance(self.box, Unset):
            box = []
            for box_item_data in self.box:
                box_item = []
                for box_item_item_data in box_item_data:
                    box_item_item: float
                    box_item_item = box_item_item_data
                    box_item.append(box_item_item)

                box.append(box_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "text": text,
                "score": score,
            }
        )
        if box is not UNSET:
            field_dict["box"] = box

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        text = d.pop("text")

        score = d.pop("score")

        _box = d.pop("box", UNSET)
        box: list[list[float]] | Unset = UNSET
        if _box is not UNSET:
            box = []
            for box_item_data in _box:
                box_item = []
                _box_item = box_item_data
                for box_item_item_data in _box_item:

                    def _parse_box_item_item(data: object) -> float:
                        return cast(float, data)

                    box_item_item = _parse_box_item_item(box_item_item_data)

                    box_item.append(box_item_item)

                box.append(box_item)

        text_line = cls(
            text=text,
            score=score,
            box=box,
        )

        text_line.additional_properties = d
        return text_line

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
