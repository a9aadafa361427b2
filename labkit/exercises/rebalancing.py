"""Lesson 06's check: a group whose members keep their partitions when another member joins."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaException

from ..config import Settings
from ..kafka.rebalance_watch import GroupWatch, describe_group, moved_and_paused
from ._feedback import require, solved
from ._setup import fresh_topic

#: Partitions of the check's topic, and the members that read it before the third joins.
PARTITIONS = 6


def _gaps(report: dict[int, dict[str, Any]], partitions: list[int]) -> str:
    return ", ".join(f"{p}: {report[p]['gap_ms']} ms" for p in partitions) or "none"


def check_keeps_processing(settings: Settings, member_config: Callable[[str, str], dict[str, Any]]) -> None:
    """Members a and b, made with ``member_config(group_id, name)``, read a fed topic; then c joins.

    Solved when no partition that stays with its member is revoked — as the broker's view of the
    group (its members and their partitions) confirms.
    """
    require(
        callable(member_config),
        "`member_config` should be a function: def member_config(group_id, name): return {...consumer settings}.",
    )
    topic = fresh_topic(settings, "keep-processing", partitions=PARTITIONS)
    group = f"{topic}-group"
    configs = {}
    for name in "abc":
        config = member_config(group, name)
        require(
            isinstance(config, dict) and config.get("group.id") == group,
            f"member_config(group_id, {name!r}) returned {type(config).__name__} "
            f"{'with group.id ' + repr(config.get('group.id')) if isinstance(config, dict) else ''}: return a dict "
            "of consumer settings with 'group.id': group_id (consumer_config(settings, group_id, ...) makes one).",
        )
        configs[name] = config
    with GroupWatch(settings, topic, PARTITIONS, configs.__getitem__, work_s=0.05) as watch:
        watch.add("a")
        watch.add("b")
        try:
            watch.wait_settled(timeout=60, what="the group of a and b")
        except RuntimeError as error:
            cause = error.__cause__
            said = cause.args[0].str() if isinstance(cause, KafkaException) else str(cause)
            require(
                False,
                f"librdkafka refused a member's settings: {said}. With group.protocol=consumer the broker decides "
                "session.timeout.ms, heartbeat.interval.ms and the assignor: leave those settings out.",
            )
        except TimeoutError as error:
            require(False, f"{error}. Are a and b in the same group, subscribed to the topic?")
        joined_at = watch.timeline.now()
        watch.add("c")
        try:
            settled_at = watch.wait_settled(timeout=60, what="the group after c joined")
        except TimeoutError as error:
            require(False, f"{error}: c never got its share of the partitions.")
        report = watch.timeline.pauses(joined_at, settled_at)
        group_view = describe_group(settings, group)
    sorted_out = moved_and_paused(report)
    owned = {name: member["partitions"] for name, member in group_view["members"].items()}
    require(
        sorted(p for partitions in owned.values() for p in partitions) == list(range(PARTITIONS)),
        f"The broker says the group's members own {owned}: every partition should have exactly one owner.",
    )
    protocol = f"{group_view['type']} group, assignor {group_view['assignor'] or '(none)'}"
    stayed, moved = sorted_out["stayed"], sorted_out["moved"]
    require(
        not sorted_out["revoked_but_stayed"],
        f"When c joined ({protocol}), the group revoked partitions {sorted_out['revoked']}: every one, even "
        f"{sorted_out['revoked_but_stayed']}, which then went back to the member that had them. Those stopped "
        f"for nothing (longest gaps: {_gaps(report, stayed)}), and their members had to give up whatever they "
        "held for them. That is the eager protocol (librdkafka's default, range,roundrobin). Ask for an "
        "incremental one: 'partition.assignment.strategy': 'cooperative-sticky', or 'group.protocol': 'consumer' "
        "(KIP-848; then leave out session.timeout.ms and heartbeat.interval.ms).",
    )
    require(
        moved and group_view["members"].get("c", {}).get("partitions"),
        f"c joined but the broker shows it owning nothing ({owned}); the group should give it a share.",
    )
    solved(
        f"{protocol}. When c joined, only partitions {moved} moved (longest pause {_gaps(report, moved)}); "
        f"{stayed} were never revoked and kept their members (longest gap {_gaps(report, stayed)}). "
        f"The broker's view now: {owned}."
    )
