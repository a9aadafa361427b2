from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="TopicState")


@_attrs_define
class TopicState:
    """
    Attributes:
        exists (bool):
        partitions (int):
        end_offsets (list[int]):
    """

    exists: bool
    partitions: int
    end_offsets: list[int]

    def to_dict(self) -> dict[str, Any]:
        exists = self.exists

        partitions = self.partitions

        end_offsets = self.end_offsets

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "exists": exists,
                "partitions": partitions,
                "end_offsets": end_offsets,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        exists = d.pop("exists")

        partitions = d.pop("partitions")

        end_offsets = cast(list[int], d.pop("end_offsets"))

        topic_state = cls(
            exists=exists,
            partitions=partitions,
            end_offsets=end_offsets,
        )

        return topic_state
