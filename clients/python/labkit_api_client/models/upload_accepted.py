from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="UploadAccepted")


@_attrs_define
class UploadAccepted:
    """``202``: Kafka has the image; each task's result follows on the WebSocket and at ``result_url``.

    Attributes:
        request_id (str): the upload's id: subscribe to it on /ws, or poll `result_url`
        id (str): deprecated since 1.3: `request_id` under its old name; gone in 2.0
        status (Literal['processing']):
        tasks (list[str]): the tasks that will answer it
        width (int):
        height (int):
        bytes_sent (int): the image as sent to Kafka (a large photo is re-encoded smaller)
        result_url (str):
        partition (int): where Kafka put it: the requests topic's partition…
        offset (int): …and offset (each result names the same)
    """

    request_id: str
    id: str
    status: Literal["processing"]
    tasks: list[str]
    width: int
    height: int
    bytes_sent: int
    result_url: str
    partition: int
    offset: int

    def to_dict(self) -> dict[str, Any]:
        request_id = self.request_id

        id = self.id

        status = self.status

        tasks = self.tasks

        width = self.width

        height = self.height

        bytes_sent = self.bytes_sent

        result_url = self.result_url

        partition = self.partition

        offset = self.offset

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "request_id": request_id,
                "id": id,
                "status": status,
                "tasks": tasks,
                "width": width,
                "height": height,
                "bytes_sent": bytes_sent,
                "result_url": result_url,
                "partition": partition,
                "offset": offset,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        request_id = d.pop("request_id")

        id = d.pop("id")

        status = cast(Literal["processing"], d.pop("status"))
        if status != "processing":
            raise ValueError(f"status must match const 'processing', got '{status}'")

        tasks = cast(list[str], d.pop("tasks"))

        width = d.pop("width")

        height = d.pop("height")

        bytes_sent = d.pop("bytes_sent")

        result_url = d.pop("result_url")

        partition = d.pop("partition")

        offset = d.pop("offset")

        upload_accepted = cls(
            request_id=request_id,
            id=id,
            status=status,
            tasks=tasks,
            width=width,
            height=height,
            bytes_sent=bytes_sent,
            result_url=result_url,
            partition=partition,
            offset=offset,
        )

        return upload_accepted
