from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

T = TypeVar("T", bound="PartitionLag")


@_attrs_define
class PartitionLag:
    """One partition as a consumer group's lag sees it.

    Attributes:
        topic (str):
        partition (int):
        committed (int | None):
        end (int):
        lag_records (int):
        lag_seconds (float | None):
    """

    topic: str
    partition: int
    committed: int | None
    end: int
    lag_records: int
    lag_seconds: float | None

    def to_dict(self) -> dict[str, Any]:
        topic = self.topic

        partition = self.partition

        committed: int | None
        committed = self.committed

        end = self.end

        lag_records = self.lag_records

        lag_seconds: float | None
        lag_seconds = self.lag_seconds

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "topic": topic,
                "partition": partition,
                "committed": committed,
                "end": end,
                "lag_records": lag_records,
                "lag_seconds": lag_seconds,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        topic = d.pop("topic")

        partition = d.pop("partition")

        def _parse_committed(data: object) -> int | None:
            if data is None:
                return data
            return cast(int | None, data)

        committed = _parse_committed(d.pop("committed"))

        end = d.pop("end")

        lag_records = d.pop("lag_records")

        def _parse_lag_seconds(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        lag_seconds = _parse_lag_seconds(d.pop("lag_seconds"))

        partition_lag = cls(
            topic=topic,
            partition=partition,
            committed=committed,
            end=end,
            lag_records=lag_records,
            lag_seconds=lag_seconds,
        )

        return partition_lag
