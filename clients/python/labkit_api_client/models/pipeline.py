from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.group import Group
    from ..models.lag import Lag
    from ..models.pipeline_topics import PipelineTopics
    from ..models.task_group import TaskGroup


T = TypeVar("T", bound="Pipeline")


@_attrs_define
class Pipeline:
    """``GET /api/pipeline``: the topics, the processors' groups and their lag, from Kafka (≤ 1 s old).

    Attributes:
        at (float): when Kafka was asked (s since the epoch)
        bootstrap (str):
        topics (PipelineTopics):
        group (Group):
        lag (Lag):
        groups (list[TaskGroup]):
        age_s (float):
    """

    at: float
    bootstrap: str
    topics: PipelineTopics
    group: Group
    lag: Lag
    groups: list[TaskGroup]
    age_s: float

    def to_dict(self) -> dict[str, Any]:
        at = self.at

        bootstrap = self.bootstrap

        topics = self.topics.to_dict()

        group = self.group.to_dict()

        lag = self.lag.to_dict()

        groups = []
        for groups_item_data in self.groups:
            groups_item = groups_item_data.to_dict()
            groups.append(groups_item)

        age_s = self.age_s

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "at": at,
                "bootstrap": bootstrap,
                "topics": topics,
                "group": group,
                "lag": lag,
                "groups": groups,
                "age_s": age_s,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.group import Group  # noqa: PLC0415
        from ..models.lag import Lag  # noqa: PLC0415
        from ..models.pipeline_topics import PipelineTopics  # noqa: PLC0415
        from ..models.task_group import TaskGroup  # noqa: PLC0415

        d = dict(src_dict)
        at = d.pop("at")

        bootstrap = d.pop("bootstrap")

        topics = PipelineTopics.from_dict(d.pop("topics"))

        group = Group.from_dict(d.pop("group"))

        lag = Lag.from_dict(d.pop("lag"))

        groups = []
        _groups = d.pop("groups")
        for groups_item_data in _groups:
            groups_item = TaskGroup.from_dict(groups_item_data)

            groups.append(groups_item)

        age_s = d.pop("age_s")

        pipeline = cls(
            at=at,
            bootstrap=bootstrap,
            topics=topics,
            group=group,
            lag=lag,
            groups=groups,
            age_s=age_s,
        )

        return pipeline
