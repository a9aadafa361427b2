from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.partition_lag import PartitionLag


T = TypeVar("T", bound="Lag")


@_attrs_define
class Lag:
    """
    Attributes:
        topic (str):
        records (int | None): requests the group has not committed yet (null: not known)
        seconds (float | None): how long the oldest has waited (null: not read in time)
        partitions (list[PartitionLag]):
    """

    topic: str
    records: int | None
    seconds: float | None
    partitions: list[PartitionLag]

    def to_dict(self) -> dict[str, Any]:
        topic = self.topic

        records: int | None
        records = self.records

        seconds: float | None
        seconds = self.seconds

        partitions = []
        for partitions_item_data in self.partitions:
            partitions_item = partitions_item_data.to_dict()
            partitions.append(partitions_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "topic": topic,
                "records": records,
                "seconds": seconds,
                "partitions": partitions,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.partition_lag import PartitionLag  # noqa: PLC0415

        d = dict(src_dict)
        topic = d.pop("topic")

        def _parse_records(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        records = _parse_records(d.pop("records"))

        def _parse_seconds(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        seconds = _parse_seconds(d.pop("seconds"))

        partitions = []
        _partitions = d.pop("partitions")
        for partitions_item_data in _partitions:
            partitions_item = PartitionLag.from_dict(partitions_item_data)

            partitions.append(partitions_item)

        lag = cls(
            topic=topic,
            records=records,
            seconds=seconds,
            partitions=partitions,
        )

        return lag
