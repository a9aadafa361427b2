from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..models.health_state_status import HealthStateStatus, check_health_state_status

T = TypeVar("T", bound="HealthState")


@_attrs_define
class HealthState:
    """``GET /healthz``: ``ok`` (200) while the app listens for results, else ``unhealthy`` (503).

    Attributes:
        status (HealthStateStatus):
        kafka (str):
        pending (int): uploads sent from here still awaiting a result
        results (int): results held for `GET /api/images/{request_id}`
    """

    status: HealthStateStatus
    kafka: str
    pending: int
    results: int

    def to_dict(self) -> dict[str, Any]:
        status: str = self.status

        kafka = self.kafka

        pending = self.pending

        results = self.results

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "status": status,
                "kafka": kafka,
                "pending": pending,
                "results": results,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        status = check_health_state_status(d.pop("status"))

        kafka = d.pop("kafka")

        pending = d.pop("pending")

        results = d.pop("results")

        health_state = cls(
            status=status,
            kafka=kafka,
            pending=pending,
            results=results,
        )

        return health_state
