"""labkit.ops.chaos on the real broker: a lost produce request, without and with idempotence.

Without idempotence it reorders and duplicates records; with it, it does not.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Producer

from labkit._net import free_port
from labkit.kafka.admin import create_topics, read_topic
from labkit.kafka.engines import make_broker
from labkit.ops.chaos import ChaosProxy


@pytest.fixture
def flaky(settings):
    broker_port, proxy_port = free_port(), free_port()
    proxy = ChaosProxy(proxy_port, broker_port).start()
    with make_broker(broker_port, advertised_port=proxy_port) as broker:
        yield proxy, settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "partitions": 1})
    proxy.cut()


@pytest.mark.parametrize("idempotent", [False, True])
def test_a_lost_request_reorders_and_repeats_only_without_idempotence(flaky, idempotent):
    proxy, settings = flaky
    topic = f"ordered-{idempotent}"
    create_topics(settings, [topic])
    producer = Producer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "enable.idempotence": idempotent,
            "linger.ms": 0,
            "batch.num.messages": 1,
            "max.in.flight.requests.per.connection": 5,
        }
    )
    producer.produce(topic, b"0")
    assert producer.flush(10) == 0
    proxy.lose_next_produce()
    for i in range(1, 6):
        producer.produce(topic, str(i).encode())
    assert producer.flush(30) == 0  # the producer believes all went well either way
    written = [m.value().decode() for m in read_topic(settings, topic, idle_s=1)]
    assert proxy.lost_requests == 1
    if idempotent:
        assert written == ["0", "1", "2", "3", "4", "5"]
    else:
        assert written[:3] == ["0", "2", "1"] and written.count("2") == 2  # reordered and duplicated


def test_lesson_08s_check_refuses_a_plain_producer_and_passes_an_idempotent_one(flaky, capsys):
    """The exercise's check stages the lost request itself and reads the topic: a plain producer writes a repeat."""
    from labkit.exercises import ExerciseFailed, check_ordered_once

    proxy, settings = flaky
    with pytest.raises(ExerciseFailed, match="written twice.*enable.idempotence"):
        check_ordered_once(settings, proxy, lambda servers: Producer({"bootstrap.servers": servers, "acks": 1}))
    with pytest.raises(ExerciseFailed, match="should be a function"):
        check_ordered_once(settings, proxy, "not a function")
    with pytest.raises(ExerciseFailed, match="returned dict"):
        check_ordered_once(settings, proxy, lambda servers: {"bootstrap.servers": servers})
    check_ordered_once(
        settings, proxy, lambda servers: Producer({"bootstrap.servers": servers, "enable.idempotence": True})
    )
    assert "✅ 0, 1, 2, 3, 4, 5: in order and once each" in capsys.readouterr().out
    assert proxy.lost_requests == 2  # the check lost one request each time it staged the failure
