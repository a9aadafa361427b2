from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.found_image import FoundImage


T = TypeVar("T", bound="Copies")


@_attrs_define
class Copies:
    """
    Attributes:
        request_id (str):
        exact (list[str]): request ids of the same bytes
        near (list[FoundImage]): the same picture re-encoded
    """

    request_id: str
    exact: list[str]
    near: list[FoundImage]

    def to_dict(self) -> dict[str, Any]:
        request_id = self.request_id

        exact = self.exact

        near = []
        for near_item_data in self.near:
            near_item = near_item_data.to_dict()
            near.append(near_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "request_id": request_id,
                "exact": exact,
                "near": near,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.found_image import FoundImage  # noqa: PLC0415

        d = dict(src_dict)
        request_id = d.pop("request_id")

        exact = cast(list[str], d.pop("exact"))

        near = []
        _near = d.pop("near")
        for near_item_data in _near:
            near_item = FoundImage.from_dict(near_item_data)

            near.append(near_item)

        copies = cls(
            request_id=request_id,
            exact=exact,
            near=near,
        )

        return copies
