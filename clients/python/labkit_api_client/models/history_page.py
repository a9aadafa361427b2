from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.stored_image import StoredImage


T = TypeVar("T", bound="HistoryPage")


@_attrs_define
class HistoryPage:
    """``GET /api/history``: stored images, newest first; ``next`` is the cursor of the page after.

    Attributes:
        images (list[StoredImage]):
        next_ (None | str):
    """

    images: list[StoredImage]
    next_: None | str

    def to_dict(self) -> dict[str, Any]:
        images = []
        for images_item_data in self.images:
            images_item = images_item_data.to_dict()
            images.append(images_item)

        next_: None | str
        next_ = self.next_

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "images": images,
                "next": next_,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.stored_image import StoredImage  # noqa: PLC0415

        d = dict(src_dict)
        images = []
        _images = d.pop("images")
        for images_item_data in _images:
            images_item = StoredImage.from_dict(images_item_data)

            images.append(images_item)

        def _parse_next_(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        next_ = _parse_next_(d.pop("next"))

        history_page = cls(
            images=images,
            next_=next_,
        )

        return history_page
