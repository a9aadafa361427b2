from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.found_image import FoundImage


T = TypeVar("T", bound="Similar")


@_attrs_define
class Similar:
    """
    Attributes:
        request_id (str):
        images (list[FoundImage]):
    """

    request_id: str
    images: list[FoundImage]

    def to_dict(self) -> dict[str, Any]:
        request_id = self.request_id

        images = []
        for images_item_data in self.images:
            images_item = images_item_data.to_dict()
            images.append(images_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "request_id": request_id,
                "images": images,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.found_image import FoundImage  # noqa: PLC0415

        d = dict(src_dict)
        request_id = d.pop("request_id")

        images = []
        _images = d.pop("images")
        for images_item_data in _images:
            images_item = FoundImage.from_dict(images_item_data)

            images.append(images_item)

        similar = cls(
            request_id=request_id,
            images=images,
        )

        return similar
