from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.found_image import FoundImage


T = TypeVar("T", bound="SearchFound")


@_attrs_define
class SearchFound:
    """``GET /api/search``: images nearest the text (``images``), those whose OCR text matches (``text``).

    Attributes:
        query (str):
        model (str): the model the query was embedded with
        min_score (float):
        exact (bool): true: an exact scan (no pgvector index)
        images (list[FoundImage]):
        text (list[FoundImage]):
        note (None | str):
    """

    query: str
    model: str
    min_score: float
    exact: bool
    images: list[FoundImage]
    text: list[FoundImage]
    note: None | str

    def to_dict(self) -> dict[str, Any]:
        query = self.query

        model = self.model

        min_score = self.min_score

        exact = self.exact

        images = []
        for images_item_data in self.images:
            images_item = images_item_data.to_dict()
            images.append(images_item)

        text = []
        for text_item_data in self.text:
            text_item = text_item_data.to_dict()
            text.append(text_item)

        note: None | str
        note = self.note

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "query": query,
                "model": model,
                "min_score": min_score,
                "exact": exact,
                "images": images,
                "text": text,
                "note": note,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.found_image import FoundImage  # noqa: PLC0415

        d = dict(src_dict)
        query = d.pop("query")

        model = d.pop("model")

        min_score = d.pop("min_score")

        exact = d.pop("exact")

        images = []
        _images = d.pop("images")
        for images_item_data in _images:
            images_item = FoundImage.from_dict(images_item_data)

            images.append(images_item)

        text = []
        _text = d.pop("text")
        for text_item_data in _text:
            text_item = FoundImage.from_dict(text_item_data)

            text.append(text_item)

        def _parse_note(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        note = _parse_note(d.pop("note"))

        search_found = cls(
            query=query,
            model=model,
            min_score=min_score,
            exact=exact,
            images=images,
            text=text,
            note=note,
        )

        return search_found
