"""RequestSender: check an image, fit it in one Kafka record, produce it, report the acknowledgement.

Each image is produced keyed by a new request id.

The web app and the notebooks both send through it, so a learner's notebook talks to Kafka
exactly as the web app does.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from functools import partial

from confluent_kafka import Producer

from ._loop import ThreadLoop
from .config import Settings
from .errors import UnknownTasks, WireFormatError
from .images import PreparedImage, prepare_upload
from .kafka.client_config import make_producer
from .kafka.producer import RenewableProducer
from .records.wire import ImageRequest, new_request_id, validate_labels, validate_tasks

log = logging.getLogger(__name__)


def choose_tasks(settings: Settings, tasks: list[str] | tuple[str, ...] | None) -> tuple[str, ...] | None:
    """The tasks an upload names, checked against ``settings.enabled_tasks``; None if none (every task).

    Raises :class:`UnknownTasks` saying which names are not tasks this pipeline runs.
    """
    if tasks is None:
        return None
    try:
        named = validate_tasks(tasks)
    except WireFormatError as exc:
        raise UnknownTasks(str(exc)) from None
    unknown = [task for task in named if task not in settings.enabled_tasks]
    if unknown:
        raise UnknownTasks(
            f"no processors run {', '.join(map(repr, unknown))} here; choose from "
            f"{', '.join(settings.enabled_tasks)} (LABKIT_TASKS lists the tasks this pipeline runs)"
        )
    return named


def expected_tasks(settings: Settings, request: ImageRequest) -> tuple[str, ...]:
    """The tasks that will answer ``request``: the ones it names, else every enabled task."""
    return request.tasks if request.tasks is not None else settings.enabled_tasks


class RequestSender:
    """Produces image requests; a background thread serves delivery reports (``producer.poll``).

    After a fatal producer error (e.g. a fenced producer id after an outage) the next
    :meth:`send` goes through a new producer: :class:`labkit.kafka.producer.RenewableProducer`, the
    same renewal the processor uses.
    """

    def __init__(self, settings: Settings, client_id: str = "labkit-sender"):
        self.settings = settings
        # Give up on a record after this long, and tell its sender so. Nobody is still waiting for
        # an upload after this: the HTTP request answered 503, so the image must not be scored
        # later behind the user's back (the producer would otherwise keep retrying for 30 s).
        self.delivery_timeout_s = settings.connect_timeout_s + 5
        self.client_id = client_id
        self.producers = RenewableProducer(
            partial(
                make_producer,
                settings,
                client_id=client_id,
                **{"message.timeout.ms": int(self.delivery_timeout_s * 1000)},
            ),
            name=client_id,
        )
        # Delivery reports only arrive while someone calls poll(); forgetting it is a classic bug.
        self._poller = ThreadLoop(
            f"{client_id}-poll", lambda: self.producers.poll(0.1), what_failed="delivery report handler failed"
        ).start()

    @property
    def producer(self) -> Producer:
        """The producer in use now (a new one after a fatal error)."""
        return self.producers.current

    def send(
        self,
        data: bytes,
        filename: str | None = None,
        labels: list[str] | tuple[str, ...] | None = None,
        tasks: list[str] | tuple[str, ...] | None = None,
    ) -> tuple[ImageRequest, PreparedImage, Future]:
        """Produce one image; the future completes when the broker acknowledges it.

        The image is scored against ``labels`` if given, by the ``tasks`` named, else by every task.

        Raises :class:`labkit.errors.BadImage` for bytes that are not an acceptable image and
        :class:`labkit.errors.WireFormatError` for unacceptable labels (:class:`labkit.errors.UnknownTasks` for task
        names), before anything is sent: the one place an upload's tasks and labels are checked.
        """
        named = choose_tasks(self.settings, tasks)
        labels = validate_labels(labels) if labels else None
        prepared = prepare_upload(data, self.settings)
        request = ImageRequest(
            request_id=new_request_id(),
            image=prepared.data,
            content_type=prepared.content_type,
            filename=filename,
            labels=labels,
            tasks=named,
        )
        acked: Future = Future()
        producer = self.producers.get()  # a new one if the last hit a fatal error

        def on_delivery(error, message) -> None:
            if error is not None:
                self.producers.failed(producer, error)  # the next send() renews it if it can send no more
            if not acked.set_running_or_notify_cancel():
                return  # the caller stopped waiting (e.g. the upload timed out): nobody to tell
            if error is None:
                acked.set_result((message.partition(), message.offset()))
            else:
                acked.set_exception(RuntimeError(f"Kafka did not accept request {request.request_id}: {error}"))

        producer.produce(
            self.settings.requests_topic,
            key=request.key(),
            value=request.image,
            headers=request.headers(),
            on_delivery=on_delivery,
        )
        return request, prepared, acked

    def close(self, timeout: float = 10) -> None:
        self.producers.flush(timeout)
        self._poller.stop(timeout)
