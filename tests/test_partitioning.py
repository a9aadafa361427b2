"""labkit.kafka.partitioning's two hashes agree with where librdkafka really puts keyed records on the broker."""

from __future__ import annotations

import random

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from labkit.kafka.client_config import make_admin
from labkit.kafka.partitioning import java_partition, librdkafka_default_partition, murmur2


def test_murmur2_matches_the_java_clients_published_values():
    # Values from Kafka's own UtilsTest (org.apache.kafka.common.utils), as signed int32 there.
    cases = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, java_signed in cases.items():
        assert murmur2(key) == java_signed & 0xFFFFFFFF, key


@pytest.mark.parametrize(
    "partitioner, predict", [("murmur2_random", java_partition), ("consistent_random", librdkafka_default_partition)]
)
def test_each_hash_predicts_librdkafka_on_the_real_broker(settings, partitioner, predict):
    rng = random.Random(7)
    keys = list({bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24))) for _ in range(200)})
    topic = f"{settings.requests_topic}-{partitioner}"
    admin = make_admin(settings)
    admin.create_topics([NewTopic(topic, num_partitions=7, replication_factor=1)])[topic].result(10)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "partitioner": partitioner})
    landed = {}
    for key in keys:
        producer.produce(
            topic, key=key, value=b"x", on_delivery=lambda e, m: landed.__setitem__(m.key(), m.partition())
        )
    assert producer.flush(15) == 0
    assert {key: predict(key, 7) for key in keys} == landed


def test_the_two_hashes_disagree_for_many_keys():
    keys = [f"user-{i}".encode() for i in range(100)]
    differ = sum(java_partition(k, 3) != librdkafka_default_partition(k, 3) for k in keys)
    assert 40 < differ < 90  # about 2 in 3 by chance: why a Python and a Java producer must agree on one
