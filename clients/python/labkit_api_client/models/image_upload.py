from __future__ import annotations

from collections.abc import Mapping
from io import BytesIO
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from .. import types
from ..models.image_upload_tasks_item import ImageUploadTasksItem, check_image_upload_tasks_item
from ..types import UNSET, File, Unset

T = TypeVar("T", bound="ImageUpload")


@_attrs_define
class ImageUpload:
    """
    Attributes:
        file (File): The image: JPEG, PNG, WebP or GIF, at most 26214400 bytes (25 MB; 413 over it, refused before the
            body is read when Content-Length says so).
        labels (str | Unset): Your own candidate labels for CLIP, comma- or newline-separated: 2 to 100 different ones
            of at most 80 characters each (the pipeline's own set when absent).
        tasks (list[ImageUploadTasksItem] | Unset): The tasks to run, each a field of its own (or comma-separated in
            one); every enabled task when absent (`GET /api/tasks`).
    """

    file: File
    labels: str | Unset = UNSET
    tasks: list[ImageUploadTasksItem] | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        file = self.file.to_tuple()

        labels = self.labels

        tasks: list[str] | Unset = UNSET
        if not isinstance(self.tasks, Unset):
            tasks = []
            for tasks_item_data in self.tasks:
                tasks_item: str = tasks_item_data
                tasks.append(tasks_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "file": file,
            }
        )
        if labels is not UNSET:
            field_dict["labels"] = labels
        if tasks is not UNSET:
            field_dict["tasks"] = tasks

        return field_dict

    def to_multipart(self) -> types.RequestFiles:
        files: types.RequestFiles = []

        files.append(("file", self.file.to_tuple()))

        if not isinstance(self.labels, Unset):
            files.append(("labels", (None, str(self.labels).encode(), "text/plain")))

        if not isinstance(self.tasks, Unset):
            for tasks_item_element in self.tasks:
                files.append(("tasks", (None, str(tasks_item_element).encode(), "text/plain")))

        for prop_name, prop in self.additional_properties.items():
            files.append((prop_name, (None, str(prop).encode(), "text/plain")))

        return files

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        file = File(payload=BytesIO(d.pop("file")))

        labels = d.pop("labels", UNSET)

        _tasks = d.pop("tasks", UNSET)
        tasks: list[ImageUploadTasksItem] | Unset = UNSET
        if _tasks is not UNSET:
            tasks = []
            for tasks_item_data in _tasks:
                tasks_item = check_image_upload_tasks_item(tasks_item_data)

                tasks.append(tasks_item)

        image_upload = cls(
            file=file,
            labels=labels,
            tasks=tasks,
        )

        image_upload.additional_properties = d
        return image_upload

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
