"""Lesson 07's check: topic and producer settings with which keyed records survive their leader's loss."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import ConfigResource, NewTopic, ResourceType

from ..kafka.admin import read_topic
from ..kafka.client_config import make_admin
from ..kafka.engines.lesson_cluster import LessonCluster
from ..kafka.replicas import wait_for_replicas
from ._feedback import ExerciseFailed, require, solved

#: Records the check sends, round-robin over ``KEYS`` keys, one partition; the leader dies after ``KILL_AT``.
RECORDS, KEYS, ACKED_FIRST, KILL_AT = 240, 4, 80, 100
#: How long the check waits, with the leader's broker down, for every record to be acknowledged.
#: A failover after SIGKILL takes broker.session.timeout.ms (9 s by default) and a moment more.
DOWN_FOR_S = 25.0

_QUIET = logging.getLogger("labkit.exercises.replication.librdkafka")
_QUIET.setLevel(logging.CRITICAL)


def _is_true(value: object) -> bool:
    return value is True or str(value).lower() == "true"


def _acks_all(producer_config: dict[str, Any]) -> bool:
    acks = producer_config.get("acks", producer_config.get("request.required.acks", -1))  # librdkafka default: -1
    return str(acks).lower() in ("all", "-1")


def _topic_setting(cluster: LessonCluster, topic: str, name: str) -> str:
    """The value ``name`` has for ``topic`` on the broker (its own, or the broker's default it inherits)."""
    admin = make_admin(cluster.settings)
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource], request_timeout=10)[resource].result(15)
    return str(entries[name].value)


def _answer(setup: Callable[[], Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    """``durable_setup()``'s answer: ``(replication factor, other topic configs, producer config)``."""
    require(callable(setup), "`durable_setup` should be a function: def durable_setup(): return topic_config, ...")
    answer = setup()
    require(
        isinstance(answer, tuple) and len(answer) == 2 and all(isinstance(part, dict) for part in answer),
        f"`durable_setup()` returned {answer!r}; return two dicts: `return topic_config, producer_config`.",
    )
    topic_config, producer_config = dict(answer[0]), dict(answer[1])
    factor = topic_config.pop("replication.factor", None)
    require(
        isinstance(factor, int) and not isinstance(factor, bool),
        "topic_config needs 'replication.factor': how many brokers keep a copy of each partition (an int).",
    )
    return (
        factor,
        {key: str(value).lower() if isinstance(value, bool) else str(value) for key, value in topic_config.items()},
        producer_config,
    )


def check_survives_broker_loss(cluster: LessonCluster, setup: Callable[[], Any]) -> None:
    """Kill the leader's broker while the learner's producer writes keyed records to their topic.

    ``setup()`` returns ``(topic_config, producer_config)``. The check creates a one-partition
    topic with ``topic_config`` (``replication.factor`` and topic configs), sends ``RECORDS``
    records over ``KEYS`` keys with a producer built from ``producer_config``, SIGKILLs the
    partition leader's broker in the middle, waits up to ``DOWN_FOR_S`` for every delivery
    report, starts the broker again and reads the topic back from the cluster.
    """
    factor, topic_config, producer_config = _answer(setup)
    require(
        1 <= factor <= cluster.brokers,
        f"replication.factor={factor}: this cluster has {cluster.brokers} brokers, and each copy of a partition "
        "lives on a different broker, so 1 … 3 copies are possible.",
    )
    cluster.start_all()  # a broker left down by an earlier cell would make three copies impossible
    settings = cluster.settings
    topic = f"durable-{uuid.uuid4().hex[:4]}"
    admin = make_admin(settings)
    try:
        new = NewTopic(topic, num_partitions=1, replication_factor=factor, config=topic_config)
        admin.create_topics([new], request_timeout=15)[topic].result(20)
    except KafkaException as exc:
        raise ExerciseFailed(
            f"The cluster refused to create a topic with {dict(topic_config, **{'replication.factor': factor})}: "
            f"{exc.args[0].str()}. Check the names and values of your topic settings."
        ) from None
    partitions, _ = wait_for_replicas(
        settings,
        topic,
        lambda ps: bool(ps) and ps[0].leader is not None and len(ps[0].isr) == factor,
        "the new partition's leader and all its replicas in sync",
        timeout=30,
    )
    leader, replicas = partitions[0].leader, partitions[0].replicas
    assert leader is not None  # the condition waited for
    require(
        len(replicas) > 1,
        f"{topic} has replication factor {len(replicas)}: its one partition lives on broker {leader} alone. When that "
        "broker dies the partition is offline — nothing can be written or read until it returns — and if its disk "
        "is lost, so is every record. Keep copies on other brokers: 'replication.factor': 3.",
    )
    min_insync = int(_topic_setting(cluster, topic, "min.insync.replicas"))
    try:
        # librdkafka's log lines (every failed connection to the dead broker) go to a quiet logger.
        quiet = {"logger": _QUIET}
        producer = Producer({**producer_config, **quiet, "bootstrap.servers": settings.bootstrap_servers})
    except (KafkaException, TypeError, ValueError) as exc:
        reason = exc.args[0].str() if isinstance(exc, KafkaException) else str(exc)
        raise ExerciseFailed(f"librdkafka refused your producer_config {producer_config}: {reason}") from None

    acked: dict[int, int] = {}  # record number → the offset the broker gave it
    failed: dict[int, KafkaError] = {}

    def send(number: int) -> None:
        def report(error: KafkaError | None, message: Any) -> None:
            (failed.__setitem__(number, error) if error else acked.__setitem__(number, message.offset()))

        key = f"key-{number % KEYS}"
        producer.produce(topic, key=key.encode(), value=f"{key}:{number // KEYS}".encode(), on_delivery=report)

    killed_at, killed = 0.0, False
    try:
        for number in range(ACKED_FIRST):
            send(number)
        producer.flush(20)
        require(
            len(acked) == ACKED_FIRST,
            f"Only {len(acked)} of the first {ACKED_FIRST} records were acknowledged with every broker up "
            f"({', '.join(sorted({e.name() for e in failed.values()})) or 'no answer within 20 s'}). Check your "
            "producer settings.",
        )
        for number in range(ACKED_FIRST, RECORDS):
            send(number)
            producer.poll(0.005)  # a steady stream: some records are in flight when the leader dies
            if number == KILL_AT:
                killed_at, killed = time.monotonic(), True
                cluster.kill(leader)
        while len(acked) + len(failed) < RECORDS and time.monotonic() - killed_at < DOWN_FOR_S:
            producer.poll(0.1)
        waited_down = time.monotonic() - killed_at
        answered_while_down = len(acked) + len(failed)
    finally:
        if killed:
            cluster.start(leader)
    producer.flush(30)  # whatever waited for the broker to come back
    new_leader = wait_for_replicas(settings, topic, lambda ps: ps[0].leader is not None, "a leader", timeout=30)[0]
    records = read_topic(settings, topic, limit=RECORDS * 3, idle_s=1)
    numbers = [_number(record.value()) for record in records]

    lost = sorted(set(acked) - set(numbers))
    if lost:
        raise ExerciseFailed(
            f"{len(lost)} record(s) the broker had acknowledged are gone (e.g. #{lost[0]}): the leader said 'got it' "
            "before its followers had copied them, then died, and a follower without them took over. That is what "
            "acks=1 (or 0) risks: use acks='all', so the leader answers once every in-sync replica has the record.",
        )
    twice = sorted({n for n in numbers if numbers.count(n) > 1})
    if twice:
        raise ExerciseFailed(
            f"{len(twice)} record(s) are in the topic twice (e.g. #{twice[0]}): the producer retried requests whose "
            "answer the dying leader never sent, and the new leader wrote them again. enable.idempotence=True numbers "
            "every batch so the broker drops such a repeat.",
        )
    out_of_order = [key for key in range(KEYS) if (seq := [n for n in numbers if n % KEYS == key]) != sorted(seq)]
    if out_of_order:
        raise ExerciseFailed(
            f"key-{out_of_order[0]}'s records are out of order in the topic: a retried request landed after a later "
            "one. enable.idempotence=True keeps the order per partition through retries.",
        )
    if failed:
        errors = sorted({error.name() for error in failed.values()})
        timeout = producer_config.get("message.timeout.ms", producer_config.get("delivery.timeout.ms"))
        raise ExerciseFailed(
            f"{len(failed)} record(s) failed ({', '.join(errors)}) instead of waiting for the new leader. "
            + (
                f"message.timeout.ms={timeout} is shorter than a failover (about 10 s here, "
                "broker.session.timeout.ms 9 s plus the election): leave it at librdkafka's 300 s or set it well "
                "above that."
                if "_MSG_TIMED_OUT" in errors
                else "Keep librdkafka's retries on (retries defaults to 2147483647) and message.timeout.ms long."
            ),
        )
    require(
        answered_while_down == RECORDS,
        f"With broker {leader} down, only {answered_while_down} of {RECORDS} records were accepted in "
        f"{waited_down:.0f} s; the rest waited until it came back. The partition had {len(replicas)} replicas, so "
        f"one loss left {len(replicas) - 1} in sync, fewer than min.insync.replicas={min_insync}: the leader "
        "refuses every acks=all write with NOT_ENOUGH_REPLICAS. Keep one more copy than min.insync.replicas: "
        "replication factor 3 with min.insync.replicas=2.",
    )
    require(
        len(numbers) == RECORDS,
        f"The topic holds {len(numbers)} of the {RECORDS} records sent (acks=0 never hears of a loss).",
    )
    # Nothing went wrong this time. Were the settings what kept it so, or luck?
    acks_alias = producer_config.get("request.required.acks")
    require(
        _acks_all(producer_config),
        f"Every record arrived — this time. With acks={producer_config.get('acks', acks_alias)} "
        "your producer counts a record as delivered before the followers have copied it (acks=1: once the leader "
        "has it; acks=0: once it is sent). Had the leader died in that window, the record would be lost although "
        "your code was told it was delivered. Use acks='all'.",
    )
    require(
        _is_true(producer_config.get("enable.idempotence", False)),
        "Every record arrived once and in order — this time. Without enable.idempotence (librdkafka's default is "
        "false) a retry after a lost answer writes a record twice, or after a later one. Set "
        "'enable.idempotence': True.",
    )
    require(
        min_insync >= 2,
        f"Every record arrived — this time. But the topic's min.insync.replicas is {min_insync}: once the ISR has "
        "shrunk to the leader alone, acks=all is satisfied by that one copy, and losing that broker loses records. "
        "Set 'min.insync.replicas': 2 in topic_config.",
    )
    require(
        not _is_true(_topic_setting(cluster, topic, "unclean.leader.election.enable")),
        "Every record arrived — this time. With unclean.leader.election.enable=true a replica outside the ISR may "
        "become leader when no in-sync one is left, and whatever it lacks is lost. Leave it false (the default).",
    )
    solved(
        f"{RECORDS} records over {KEYS} keys, once each and in order per key, although broker {leader} (the leader) "
        f"was killed after record #{KILL_AT}: broker {new_leader[0].leader} leads now, and every record was "
        f"acknowledged {waited_down:.1f} s after the kill, with replication factor {len(replicas)}, "
        f"min.insync.replicas={min_insync}, acks=all and idempotence."
    )


def _number(value: bytes | None) -> int:
    """Record number of a value ``key-K:SEQ`` (record ``SEQ * KEYS + K``)."""
    key, seq = (value or b"key-0:-1").decode().split(":")
    return int(seq) * KEYS + int(key.removeprefix("key-"))
