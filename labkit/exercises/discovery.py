"""Check for notebook 14 (service discovery): a client can really use the broker it is told about.

The client is bootstrapped on this machine.
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import KafkaException

from ..config import Settings
from ..kafka.admin import create_topics
from ..kafka.client_config import make_admin, make_producer
from ._feedback import require, solved


def check_reachable_broker(settings: Settings, broker: Any) -> None:
    """Bootstrap via the broker's listening address, then create a topic and produce, as any client would."""
    require(
        hasattr(broker, "port") and hasattr(broker, "advertised_host"),
        "`fixed_broker` should be the broker you started, e.g. labkit.start_broker(port, advertised_host=...).",
    )
    on_this_machine = settings.model_copy(update={"bootstrap": f"127.0.0.1:{broker.port}", "connect_timeout_s": 3.0})
    try:
        metadata = make_admin(on_this_machine).list_topics(timeout=5)
    except KafkaException as exc:
        # librdkafka may drop the bootstrap connection once the first metadata names the advertised
        # brokers; asking again then needs the advertised address, which is the lesson's point.
        require(
            False,
            f"The client bootstrapped at 127.0.0.1:{broker.port}, then could not get the cluster's metadata "
            f"({exc.args[0].str()}): after its first request a client talks to the broker's *advertised* address: "
            "advertise one that a program on this machine can reach (this machine's own address), not a name "
            "that only resolves inside a container network.",
        )
        raise  # require() raised already
    told = sorted(f"{b.host}:{b.port}" for b in metadata.brokers.values())
    topic = f"discovery-{uuid.uuid4().hex[:4]}"
    try:
        create_topics(on_this_machine.model_copy(update={"partitions": 1}), [topic])
    except Exception as exc:  # a timeout, a refused request: any failure here is the lesson's point
        require(
            False,
            f"The bootstrap address answered, and told the client to use {told} from then on — but creating a "
            f"topic there failed ({str(exc)[:120]}). A client connects to the *advertised* address after its "
            "first request: advertise one that a program on this machine can reach (this machine's own "
            "address), not a name that only resolves inside a container network.",
        )
    errors: list = []
    timeout: dict[str, Any] = {"message.timeout.ms": 5000}
    producer = make_producer(on_this_machine, "labkit-exercise", **timeout)
    producer.produce(topic, b"found you", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(8)
    require(
        errors == [None],
        f"The topic was created, but producing to it failed ({errors}); the client was told to use {told}.",
    )
    solved(f"a client bootstrapped at 127.0.0.1:{broker.port} was told {told}, reached it, and produced.")
