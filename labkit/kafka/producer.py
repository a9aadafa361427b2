"""A producer that a fresh one replaces once it can never deliver again, and the errors that say so.

A librdkafka producer retries by itself through dropped connections and leader moves, so most
errors need nothing from us. A few leave it unable to send anything ever again: a *fatal* error,
or a fenced producer id (the broker lost or rejected the idempotence state that lets it drop
duplicate retries, e.g. after a long outage). A service must not go on failing every record
then: :class:`RenewableProducer` starts a new producer instead.

The processor (through :class:`labkit.kafka.checkpoint.Checkpoint`), re-embedding and the web's
and the notebooks' :class:`labkit.request_sender.RequestSender` all produce through one.
Waiting for the broker's acknowledgements is :meth:`RenewableProducer.flush`: it serves the
delivery reports and returns how many records are still unacknowledged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import KafkaError, Producer

log = logging.getLogger(__name__)


def producer_is_done_for(error: KafkaError) -> bool:
    """Errors after which this producer will never deliver again: fatal ones, and a fenced producer id.

    A fenced producer id means the broker lost or rejected our idempotence state, e.g. after an outage.
    """
    return error.fatal() or error.code() in (
        KafkaError.PRODUCER_FENCED,
        KafkaError._FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    )


class RenewableProducer:
    """The producer to use now; a new one takes over once the current one can send no more.

    A fatal error (e.g. the broker fenced our idempotent producer id after a long outage) leaves
    a librdkafka producer unable to send anything ever again, and a service must not go on
    failing every record. librdkafka reports it through the producer's ``error_cb`` (wired here)
    or a delivery report (pass it to :meth:`failed`); the next :meth:`get` then starts a new
    producer. :meth:`renew` replaces the producer at once (the processor does after a rewind).
    """

    def __init__(self, make: Callable[..., Producer], name: str = "labkit-producer"):
        """``make(error_cb=...)`` builds a producer (``kafka_config.make_producer`` with its settings bound)."""
        self._make = make
        self.name = name
        self._lock = threading.Lock()
        self._broken: str | None = None
        self.current: Producer = self._start()

    def _start(self) -> Producer:
        producer: Producer | None = None

        def on_error(error: KafkaError) -> None:
            # librdkafka's error callback, served by this producer's poll()/flush(): connection trouble
            # (it retries by itself) or a fatal error.
            self.failed(producer, error)

        producer = self._make(error_cb=on_error)
        return producer

    @property
    def broken(self) -> str | None:
        """The error that finished the current producer, if one did (the next :meth:`get` replaces it)."""
        return self._broken

    def failed(self, producer: Producer | None, error: KafkaError) -> None:
        """Note ``producer``'s ``error``: if it can never deliver again (and is current), next get() renews it."""
        if producer is self.current and producer_is_done_for(error) and not self._broken:
            log.error("%s: the Kafka producer can send no more (%s); a new producer takes over", self.name, error)
            self._broken = str(error)

    def get(self) -> Producer:
        """The producer to use now: a new one if the current one hit a fatal error."""
        if self._broken:
            self.renew(only_if_broken=True)
        return self.current

    def renew(self, only_if_broken: bool = False) -> Producer:
        """Start a new producer; the old one drops what it still holds (its senders get their error now)."""
        with self._lock:
            if only_if_broken and not self._broken:
                return self.current  # another thread renewed it first
            old, self.current, self._broken = self.current, self._start(), None
        old.purge()  # what it still holds fails now, not after message.timeout.ms
        old.poll(0)  # and its delivery reports say so
        return self.current

    def poll(self, timeout: float = 0) -> int:
        """Serve the current producer's delivery reports and callbacks."""
        return self.current.poll(timeout)

    def flush(self, timeout: float) -> int:
        """Flush the current producer for up to ``timeout`` s; returns how many records stay unacknowledged."""
        return self.current.flush(timeout)
