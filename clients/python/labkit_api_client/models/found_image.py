from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.found_image_tasks import FoundImageTasks


T = TypeVar("T", bound="FoundImage")


@_attrs_define
class FoundImage:
    """
    Attributes:
        request_id (str):
        id (str): deprecated since 1.3: `request_id` under its old name; gone in 2.0
        sent_at (None | str): ISO 8601
        filename (None | str):
        tasks (FoundImageTasks):
        label (None | str): CLIP's top label
        label_score (float | None):
        text (None | str): the text OCR read
        model (None | str): the model its vector came from
        thumbnail (None | str): the URL of its 160 px JPEG
        score (float | None): cosine similarity (images) or text rank (text)
    """

    request_id: str
    id: str
    sent_at: None | str
    filename: None | str
    tasks: FoundImageTasks
    label: None | str
    label_score: float | None
    text: None | str
    model: None | str
    thumbnail: None | str
    score: float | None

    def to_dict(self) -> dict[str, Any]:
        request_id = self.request_id

        id = self.id

        sent_at: None | str
        sent_at = self.sent_at

        filename: None | str
        filename = self.filename

        tasks = self.tasks.to_dict()

        label: None | str
        label = self.label

        label_score: float | None
        label_score = self.label_score

        text: None | str
        text = self.text

        model: None | str
        model = self.model

        thumbnail: None | str
        thumbnail = self.thumbnail

        score: float | None
        score = self.score

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "request_id": request_id,
                "id": id,
                "sent_at": sent_at,
                "filename": filename,
                "tasks": tasks,
                "label": label,
                "label_score": label_score,
                "text": text,
                "model": model,
                "thumbnail": thumbnail,
                "score": score,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.found_image_tasks import FoundImageTasks  # noqa: PLC0415

        d = dict(src_dict)
        request_id = d.pop("request_id")

        id = d.pop("id")

        def _parse_sent_at(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        sent_at = _parse_sent_at(d.pop("sent_at"))

        def _parse_filename(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        filename = _parse_filename(d.pop("filename"))

        tasks = FoundImageTasks.from_dict(d.pop("tasks"))

        def _parse_label(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        label = _parse_label(d.pop("label"))

        def _parse_label_score(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        label_score = _parse_label_score(d.pop("label_score"))

        def _parse_text(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        text = _parse_text(d.pop("text"))

        def _parse_model(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        model = _parse_model(d.pop("model"))

        def _parse_thumbnail(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        thumbnail = _parse_thumbnail(d.pop("thumbnail"))

        def _parse_score(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        score = _parse_score(d.pop("score"))

        found_image = cls(
            request_id=request_id,
            id=id,
            sent_at=sent_at,
            filename=filename,
            tasks=tasks,
            label=label,
            label_score=label_score,
            text=text,
            model=model,
            thumbnail=thumbnail,
            score=score,
        )

        return found_image
