"""Watch a group rebalance (lesson 06): members in threads, a steady feed, and each partition's pause.

A :class:`GroupWatch` runs a producer thread that writes one record to every partition of a topic
every few milliseconds, and any number of group members, each a :class:`Member` thread with its
own consumer. Every member notes in the watch's :class:`Timeline` when the group hands it
partitions (``on_assign``), takes them away (``on_revoke``, ``on_lost``), and when it processes a
record of each partition. From that timeline, :meth:`Timeline.pauses` measures, partition by
partition, the longest time without a processed record around a rebalance, and which partitions
were revoked at all: the difference between a stop-the-world and an incremental rebalance.

Members commit (asynchronously) each batch once processed, so a partition's next owner starts
about where its last owner stopped.
Each batch a member polls takes ``work_s`` to "process" (a sleep), as real work would: a
stop-the-world rebalance waits for every member to finish the batch in hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from ..config import Settings
from .client_config import make_admin, make_producer

#: Consumer settings the classic protocol uses and ``group.protocol=consumer`` refuses (librdkafka: "not supported
#: for `group.protocol=consumer`"): with KIP-848 the broker decides the session, the heartbeats and the assignment.
CLASSIC_ONLY = ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy", "group.protocol.type")


@dataclass(frozen=True)
class Event:
    """A member's callback: ``kind`` is ``assign``, ``revoke`` or ``lost``, ``at`` seconds since the start."""

    at: float
    member: str
    kind: str
    partitions: tuple[int, ...]


@dataclass
class Timeline:
    """What every member of a group did, time-stamped (seconds since the watch started); shared by threads."""

    started: float = field(default_factory=time.monotonic)
    events: list[Event] = field(default_factory=list)
    processed: dict[int, list[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def now(self) -> float:
        return time.monotonic() - self.started

    def note(self, member: str, kind: str, partitions: list[int]) -> None:
        with self._lock:
            self.events.append(Event(self.now(), member, kind, tuple(sorted(partitions))))

    def record(self, partition: int) -> None:
        with self._lock:
            self.processed.setdefault(partition, []).append(self.now())

    def owners(self, until: float | None = None) -> dict[int, str]:
        """Partition → the member that owns it (as the members' callbacks tell), at ``until`` (default: now)."""
        owners: dict[int, str] = {}
        with self._lock:
            events = list(self.events)
        for event in events:
            if until is not None and event.at > until:
                break
            for partition in event.partitions:
                if event.kind == "assign":
                    owners[partition] = event.member
                elif owners.get(partition) == event.member:
                    del owners[partition]
        return owners

    def last_processed(self) -> dict[int, float]:
        with self._lock:
            return {partition: times[-1] for partition, times in self.processed.items() if times}

    def pauses(self, since: float, until: float) -> dict[int, dict[str, Any]]:
        """Per partition, what the rebalance between ``since`` and ``until`` did to it.

        ``revoked``: the members that gave it up (``on_revoke``/``on_lost``) in that window;
        ``gap_ms``: the longest time between two records processed one after the other, from the
        last one before ``since`` to the first after ``until``; ``unowned_ms``: how long nobody owned it.
        """
        with self._lock:
            events = [event for event in self.events if since <= event.at <= until]
            processed = {partition: list(times) for partition, times in self.processed.items()}
        before, after = self.owners(since), self.owners(until)
        report: dict[int, dict[str, Any]] = {}
        for partition in sorted(set(before) | set(after) | set(processed)):
            times = processed.get(partition, [])
            window = [t for t in times if t < since][-1:] + [t for t in times if since <= t <= until]
            window += [t for t in times if t > until][:1]
            gaps = [b - a for a, b in zip(window, window[1:])]
            unowned, owner, lost_at = 0.0, before.get(partition), since
            for event in events:
                if partition not in event.partitions:
                    continue
                if event.kind == "assign":
                    if owner is None:
                        unowned += event.at - lost_at
                    owner = event.member
                elif owner == event.member:
                    owner, lost_at = None, event.at
            report[partition] = {
                "before": before.get(partition),
                "after": after.get(partition),
                "revoked": sorted({e.member for e in events if e.kind != "assign" and partition in e.partitions}),
                "gap_ms": round(1000 * max(gaps, default=0.0)),
                "unowned_ms": round(1000 * unowned),
            }
        return report


class Member:
    """A group member: a thread that polls its own consumer and notes its callbacks and processed records.

    ``config`` is the consumer's whole librdkafka configuration. :meth:`stop` closes the consumer
    (``close()``: the member leaves the group — or, as a static member, does not say so).
    """

    def __init__(self, timeline: Timeline, name: str, topic: str, config: dict[str, Any], work_s: float = 0.0):
        self.timeline, self.name, self.topic, self.work_s = timeline, name, topic, work_s
        self.config = {**config, "enable.auto.commit": False}  # each batch is committed once processed
        self.owned: set[int] = set()
        self.error: BaseException | None = None
        self.joined = threading.Event()  # set the first time the group hands this member partitions
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"member-{name}", daemon=True)

    def start(self) -> Member:
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        """Close the consumer (in its own thread) and wait for it."""
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            consumer = Consumer(self.config)
        except BaseException as error:  # e.g. a setting librdkafka refuses
            self.error = error
            return

        def on_assign(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            self.owned = self.owned | {tp.partition for tp in partitions}  # a new set: other threads read it
            self.timeline.note(self.name, "assign", [tp.partition for tp in partitions])
            if partitions:
                self.joined.set()

        def on_revoke(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            self.owned = self.owned - {tp.partition for tp in partitions}
            self.timeline.note(self.name, "revoke", [tp.partition for tp in partitions])

        def on_lost(consumer: Consumer, partitions: list[TopicPartition]) -> None:
            self.owned = self.owned - {tp.partition for tp in partitions}
            self.timeline.note(self.name, "lost", [tp.partition for tp in partitions])

        try:
            consumer.subscribe([self.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
            while not self._stop.is_set():
                batch = [m for m in consumer.consume(100, 0.05) if not m.error()]
                if batch and self.work_s:
                    time.sleep(self.work_s)  # processing the batch
                for partition in {m.partition() or 0 for m in batch}:
                    self.timeline.record(partition)  # done with this partition's records: noting when
                if batch:  # commit what was processed: a revoked partition's next owner starts there
                    consumer.commit(asynchronous=True)
        except BaseException as error:
            self.error = error
        finally:
            consumer.close()  # on_revoke runs inside (classic protocol: LeaveGroup unless static)
            self.owned = set()


class GroupWatch:
    """A topic fed continuously and one group's members reading it; a context manager that stops them all.

    ``config_for(name)`` gives the whole consumer configuration of member ``name``.
    """

    def __init__(
        self,
        settings: Settings,
        topic: str,
        partitions: int,
        config_for: Callable[[str], dict[str, Any]],
        every_s: float = 0.02,
        work_s: float = 0.0,
    ):
        self.settings, self.topic, self.partitions, self.config_for = settings, topic, partitions, config_for
        self.timeline = Timeline()
        self.members: dict[str, Member] = {}
        self._every_s, self.work_s = every_s, work_s
        self._stop = threading.Event()
        self._feed = threading.Thread(target=self._produce, name="feed", daemon=True)
        self._feed.start()

    def _produce(self) -> None:
        producer = make_producer(self.settings, client_id="rebalance-feed")
        n = 0
        while not self._stop.is_set():
            for partition in range(self.partitions):
                producer.produce(self.topic, value=str(n).encode(), partition=partition)
            producer.poll(0)
            n += 1
            self._stop.wait(self._every_s)
        producer.flush(10)

    def add(self, name: str) -> Member:
        """Start member ``name`` (it joins the group at its first poll)."""
        member = Member(self.timeline, name, self.topic, self.config_for(name), self.work_s).start()
        self.members[name] = member
        return member

    def remove(self, name: str) -> None:
        """Close member ``name``: it leaves the group (a static member does not say so)."""
        self.members.pop(name).stop()

    def settled(self) -> bool:
        """Every partition has exactly one owner among the running members, and each of them owns some."""
        members = [m for m in self.members.values() if m.running]
        owned = sorted(p for m in members for p in m.owned)
        return owned == list(range(self.partitions)) and all(m.owned for m in members[: self.partitions])

    def wait_settled(self, timeout: float = 30.0, what: str = "the group") -> float:
        """Wait until :meth:`settled` and every partition has processed a record since; return the watch time."""
        deadline = time.monotonic() + timeout
        settled_at: float | None = None
        while time.monotonic() < deadline:
            for member in self.members.values():
                if member.error is not None:
                    raise RuntimeError(f"member {member.name} failed: {member.error}") from member.error
            if not self.settled():
                settled_at = None
            elif settled_at is None:
                settled_at = self.timeline.now()
            else:
                last = self.timeline.last_processed()
                if all(last.get(p, -1.0) > settled_at for p in range(self.partitions)):
                    return self.timeline.now()
            time.sleep(0.05)
        owners = {name: sorted(m.owned) for name, m in self.members.items()}
        raise TimeoutError(f"{what} did not settle within {timeout:.0f} s: members own {owners}")

    def close(self) -> None:
        members = [self.members.pop(name) for name in list(self.members)]
        for member in members:
            member.stop(timeout=0)  # ask them all at once
        for member in members:
            member.stop()
        self._stop.set()
        self._feed.join(15)

    def __enter__(self) -> GroupWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def moved_and_paused(report: dict[int, dict[str, Any]]) -> dict[str, list[int]]:
    """Sort the partitions of one :meth:`Timeline.pauses` report.

    ``moved`` (changed owner), ``stayed``, ``revoked`` at all, and ``revoked_but_stayed`` (taken
    away and handed back to the same member).
    """
    moved = sorted(p for p, r in report.items() if r["before"] != r["after"])
    revoked = sorted(p for p, r in report.items() if r["revoked"])
    return {
        "moved": moved,
        "stayed": sorted(set(report) - set(moved)),
        "revoked": revoked,
        "revoked_but_stayed": sorted(set(revoked) - set(moved)),
    }


def describe_group(settings: Settings, group_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """What the broker says of ``group_id``: DescribeGroups, or ConsumerGroupDescribe (a consumer group).

    Its type (``classic`` or ``consumer``: Kafka 4 has both), assignor, state, and each member's
    client id, static instance id (``group.instance.id``) and partitions.
    """
    admin = make_admin(settings)
    description = admin.describe_consumer_groups([group_id], request_timeout=timeout)[group_id].result()
    return {
        "type": description.type.name.lower(),
        "assignor": description.partition_assignor,
        "state": description.state.name.lower(),
        "members": {
            member.client_id: {
                "instance": member.group_instance_id,
                "partitions": sorted(tp.partition for tp in member.assignment.topic_partitions),
            }
            for member in description.members
        },
    }
