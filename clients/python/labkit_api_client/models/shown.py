from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="Shown")


@_attrs_define
class Shown:
    """One row of an answer as the page and notebooks show it: a text, and a score or colour if it has one.

    Attributes:
        text (str):
        score (float | None | Unset): 0..1, drawn as a bar (CLIP) or a percentage (OCR)
        swatch (None | str | Unset): a colour to draw beside the text, as #rrggbb
    """

    text: str
    score: float | None | Unset = UNSET
    swatch: None | str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        text = self.text

        score: float | None | Unset
        if isinstance(self.score, Unset):
            score = UNSET
        else:
            score = self.score

        swatch: None | str | Unset
        if isinstance(self.swatch, Unset):
            swatch = UNSET
        else:
            swatch = self.swatch

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "text": text,
            }
        )
        if score is not UNSET:
            field_dict["score"] = score
        if swatch is not UNSET:
            field_dict["swatch"] = swatch

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        text = d.pop("text")

        def _parse_score(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        score = _parse_score(d.pop("score", UNSET))

        def _parse_swatch(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        swatch = _parse_swatch(d.pop("swatch", UNSET))

        shown = cls(
            text=text,
            score=score,
            swatch=swatch,
        )

        shown.additional_properties = d
        return shown

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
