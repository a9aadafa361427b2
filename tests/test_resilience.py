"""Crashes, restarts and overload on the real broker: every upload still gets exactly one visible result.

A processor killed with SIGKILL mid-batch, the web app restarting, the broker late or gone for a
while, a backlog past its limit.
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
import time
from collections import Counter

import httpx
import pytest
from websockets.sync.client import connect

from conftest import WebServer
from labkit._net import free_port
from labkit.kafka.admin import create_topics, read_topic
from labkit.kafka.engines import make_broker
from labkit.ops.chaos import ChaosProxy
from labkit.ops.stack import Stack


def _upload(url: str, data: bytes, name: str = "photo.jpg") -> httpx.Response:
    return httpx.post(f"{url}/api/images", files={"file": (name, data, "image/jpeg")}, timeout=30)


def _wait_done(url: str, request_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{url}/api/images/{request_id}", timeout=5)
        if response.status_code == 200 and response.json()["status"] != "processing":
            return response.json()
        assert time.monotonic() < deadline, f"no result for {request_id}: {response.status_code} {response.text}"
        time.sleep(0.1)


def _wait_until(condition, what: str, timeout: float = 30):
    """Poll ``condition`` until it returns something truthy (returned); fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def _logged(caplog, *fragments: str) -> int:
    """How many captured log records contain every one of ``fragments``."""
    return sum(all(f in r.getMessage() for f in fragments) for r in caplog.records)


def _read_reply(raw: socket.socket) -> str:
    """One HTTP response off a raw socket: the headers, then Content-Length bytes of body."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := raw.recv(4096)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length and (chunk := raw.recv(4096)):
        body += chunk
    return (head + b"\r\n\r\n" + body).decode(errors="replace")


def _processor_process(settings, **changes) -> Stack:
    """One processor in a child process (it can be killed for real), in the test's group."""
    return Stack(settings.model_copy(update=changes), web=False, processors=1, echo=False).start()


@pytest.mark.parametrize("failpoint", ["after-consume:2", "before-commit:2"])
def test_processor_killed_mid_batch_every_upload_gets_exactly_one_visible_result(settings, photos, failpoint):
    create_topics(settings)
    doomed = _processor_process(settings, failpoint=failpoint, max_batch_size=4)
    rescuer = None
    try:
        with WebServer(settings) as web, connect(f"ws://127.0.0.1:{web.port}/ws") as socket:
            ids = []
            for path in photos[:24]:
                response = _upload(web.url, path.read_bytes(), path.name)
                assert response.status_code == 202, response.text
                ids.append(response.json()["request_id"])
                socket.send(json.dumps({"type": "subscribe", "request_id": ids[-1]}))
            assert doomed.children[0].process.wait(60) == -signal.SIGKILL  # died at the failpoint, no clean-up
            rescuer = _processor_process(settings)
            pushed = Counter()
            while set(pushed) != set(ids):
                message = json.loads(socket.recv(timeout=60))
                pushed[message["request_id"]] += 1
            with pytest.raises(TimeoutError):  # and nothing more: no second copy of any result
                socket.recv(timeout=2)
            assert all(count == 1 for count in pushed.values())
            assert all(_wait_done(web.url, i)["status"] == "done" for i in ids)
        written = Counter(m.key().decode() for m in read_topic(settings, settings.results_topic))
        assert set(written) == set(ids)
        if failpoint.startswith("before-commit"):
            # The dead processor's last batch was produced but not committed: the rescuer redid it,
            # so the topic holds duplicates — which nobody above saw.
            assert sum(written.values()) > len(ids)
    finally:
        for stack in (doomed, rescuer):
            if stack:
                stack.stop()


def _result_keys(settings, isolation: str) -> Counter:
    """How many result records each request id has, as a reader with ``isolation.level=isolation`` sees them."""
    from labkit.kafka.client_config import make_consumer

    consumer = make_consumer(settings, **{"isolation.level": isolation, "enable.partition.eof": True})
    partitions = len(consumer.list_topics(settings.results_topic, timeout=10).topics[settings.results_topic].partitions)
    consumer.subscribe([settings.results_topic])
    keys: Counter = Counter()
    at_end: set[int] = set()
    deadline = time.monotonic() + 30
    try:
        while len(at_end) < partitions and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                at_end.add(message.partition())  # _PARTITION_EOF: read up to the end (for read_committed: the LSO)
                continue
            at_end.discard(message.partition())
            keys[message.key().decode()] += 1
    finally:
        consumer.close()
    return keys


@pytest.mark.parametrize("failpoint", ["after-consume:2", "before-commit:2"])
def test_exactly_once_a_processor_killed_mid_batch_leaves_one_result_per_upload_in_the_topic(
    settings, photos, failpoint
):
    """LABKIT_EXACTLY_ONCE: a batch's results and offsets in one transaction; a read_committed reader sees each once."""
    if settings.engine != "kafka":
        pytest.skip(
            "exactly-once needs Apache Kafka (Tansu's refusal: the next test); CI runs this with --engine kafka"
        )
    from labkit.request_sender import RequestSender

    create_topics(settings)
    doomed = _processor_process(settings, failpoint=failpoint, max_batch_size=4, exactly_once=True)
    rescuer = None
    sender = RequestSender(settings)
    try:
        sent = [sender.send(path.read_bytes(), path.name) for path in photos[:24]]
        ids = {request.request_id for request, _, acked in sent if acked.result(10)}
        assert doomed.children[0].process.wait(60) == -signal.SIGKILL  # died at the failpoint, inside a transaction
        rescuer = _processor_process(settings, exactly_once=True)
        _wait_until(
            lambda: set(_result_keys(settings, "read_committed")) == ids,
            "a committed result for every upload",
            timeout=90,
        )
        committed = _result_keys(
            settings, "read_committed"
        )  # what the web app and LabClient read (librdkafka's default)
        assert all(count == 1 for count in committed.values()), committed
        in_the_log = _result_keys(settings, "read_uncommitted")
        if failpoint.startswith("before-commit"):
            # The dead processor's last batch reached the log inside a transaction that was then aborted:
            # its records are there, marked aborted, and no read_committed reader ever sees them.
            assert sum(in_the_log.values()) > len(ids), in_the_log
        else:
            assert in_the_log == committed  # it died before producing anything of that batch
    finally:
        sender.close()
        for stack in (doomed, rescuer):
            if stack:
                stack.stop()


def test_exactly_once_is_refused_on_the_lab_broker_saying_why(settings, scorer):
    """Tansu shows aborted transactions to read_committed readers: a processor refuses to promise exactly-once there."""
    if settings.engine != "tansu":
        pytest.skip("the refusal is Tansu's; on Apache Kafka exactly-once runs (the test above)")
    from labkit.processor import Processor

    create_topics(settings)
    processor = Processor(settings.model_copy(update={"exactly_once": True}), scorer, name="eos-on-tansu")
    processor.start_in_thread(wait=False)
    _wait_until(lambda: not processor.running, "the processor to stop")
    assert "needs Apache Kafka" in str(processor.error) and "--engine kafka" in str(processor.error)


def test_a_web_restart_loses_no_results(settings, start_processor, photos):
    start_processor()
    with WebServer(settings) as first:
        ids = [_upload(first.url, path.read_bytes(), path.name).json()["request_id"] for path in photos[:6]]
    # Every result is in Kafka before the next web app starts: it can only get them by replaying.
    _wait_until(
        lambda: set(ids) <= {m.key().decode() for m in read_topic(settings, settings.results_topic, idle_s=0.3)},
        "the results, written while no web app runs",
    )
    with WebServer(settings) as second:  # a new process would start the same way: it replays recent results
        for request_id in ids:
            assert _wait_done(second.url, request_id, timeout=15)["status"] == "done"


def test_services_started_before_the_broker_wait_with_backoff_then_work(settings, scorer, photos, caplog):
    from labkit.lab_client import LabClient
    from labkit.processor import Processor

    port = free_port()
    late = settings.model_copy(update={"bootstrap": f"127.0.0.1:{port}", "connect_timeout_s": 1})
    caplog.set_level(logging.WARNING, logger="labkit.kafka.admin")
    processor = Processor(late, scorer, name="early-processor").start_in_thread(wait=False)
    try:
        # It retries (twice at least), with backoff, instead of giving up.
        _wait_until(
            lambda: _logged(caplog, "not ready (no broker answers", "retrying in") >= 2,
            "a second retry while no broker answers",
        )
        assert not processor.ready.is_set() and processor.error is None  # still waiting, not crashed
        with make_broker(port):
            _wait_until(lambda: _logged(caplog, "topics missing"), "the processor to find the broker, not its topics")
            assert not processor.ready.is_set() and processor.error is None
            create_topics(late)
            assert processor.ready.wait(60), processor.error
            with LabClient(late) as lab:
                assert lab.classify(photos[0]).status == "ok"
            processor.stop()
    finally:
        processor.stop()


def test_the_broker_going_away_gives_clear_503s_and_work_resumes_when_it_returns(settings, scorer, photos):
    from labkit.processor import Processor

    broker_port, reachable_port = free_port(), free_port()
    network = ChaosProxy(reachable_port, broker_port).start()  # clients reach the broker only through this
    broker = make_broker(broker_port, advertised_port=reachable_port).start()
    own = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "connect_timeout_s": 2})
    create_topics(own)
    processor = Processor(own, scorer, name="outage-processor").start_in_thread()
    try:
        with WebServer(own) as web:
            first = _upload(web.url, photos[0].read_bytes())
            assert _wait_done(web.url, first.json()["request_id"])["status"] == "done"

            network.cut()  # the broker is unreachable (restarting, or the network failed)
            down = _upload(web.url, photos[1].read_bytes())
            assert down.status_code == 503 and "try again" in down.json()["detail"]
            assert int(down.headers["Retry-After"]) > 0
            assert processor.running  # the processor waits it out; it does not crash

            network.restore()
            deadline = time.monotonic() + 60
            while (again := _upload(web.url, photos[2].read_bytes())).status_code != 202:
                assert time.monotonic() < deadline, again.text
                time.sleep(1)
            assert _wait_done(web.url, again.json()["request_id"], timeout=60)["status"] == "done"
            # The upload that got a 503 was given up for good (the producer's message.timeout.ms):
            # it is not scored later behind the user's back; the 503 asked them to send it again.
            assert len(read_topic(own, own.requests_topic)) == 2  # the first upload and the last, not the 503
    finally:
        processor.stop()
        network.cut()
        broker.stop()


def test_a_backlog_past_the_limit_gets_429_with_retry_after_and_recovers(settings, start_processor, photos):
    limited = settings.model_copy(update={"max_pending_uploads": 3})
    create_topics(limited)
    with WebServer(limited) as web:
        accepted = [_upload(web.url, path.read_bytes()) for path in photos[:3]]  # no processor yet: they wait
        assert [r.status_code for r in accepted] == [202, 202, 202]
        refused = _upload(web.url, photos[3].read_bytes())
        assert refused.status_code == 429 and "already waiting" in refused.json()["detail"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        start_processor()
        for response in accepted:
            _wait_done(web.url, response.json()["request_id"])
        assert _upload(web.url, photos[3].read_bytes()).status_code == 202


def test_each_hop_logs_one_line_with_the_request_id(web, photos, caplog):
    caplog.set_level(logging.INFO, logger="labkit")
    request_id = _upload(web.url, photos[5].read_bytes()).json()["request_id"]
    _wait_done(web.url, request_id)
    trail = {"labkit.web.app", "labkit.batch", "labkit.web.hub"}  # accepted → scored → delivered
    _wait_until(
        lambda: trail <= {r.name for r in caplog.records if request_id in r.getMessage()},
        f"a line with the request id from each of {trail}",
        timeout=10,
    )


def test_a_chunked_upload_is_cut_off_at_the_limit_not_read_to_the_end(settings):
    small = settings.model_copy(update={"max_upload_bytes": 1024 * 1024})
    create_topics(small)
    with WebServer(small) as web, socket.create_connection(("127.0.0.1", web.port), timeout=10) as raw:
        raw.sendall(
            b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n\r\n"
        )
        part = b'--x\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'
        raw.sendall(b"%x\r\n%s\r\n" % (len(part), part))
        chunk = b"\xff" * 65536
        for _ in range(24):  # 1.5 MiB of a body that would go on for ever: no Content-Length to refuse early
            raw.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        reply = _read_reply(raw)  # answered while the upload is still unfinished
        assert reply.startswith("HTTP/1.1 413") and "limit" in reply
        assert httpx.get(f"{web.url}/healthz").status_code == 200


def test_a_declared_oversize_upload_is_refused_before_the_body_is_sent(settings):
    create_topics(settings)
    with WebServer(settings) as web, socket.create_connection(("127.0.0.1", web.port), timeout=10) as raw:
        raw.sendall(
            b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {settings.max_upload_bytes * 4}\r\n\r\n".encode()
        )
        reply = _read_reply(raw)  # answered although not one byte of the body was sent
    assert reply.startswith("HTTP/1.1 413") and "limit" in reply
    assert "content-security-policy" in reply.lower()  # the early answer still carries the security headers


class _HeldScorer:
    """The session's real scorer, except that its first batch waits until the test lets it go."""

    def __init__(self, scorer):
        self._scorer, self.entered, self.go = scorer, threading.Event(), threading.Event()

    def embed_and_score(self, *args, **kwargs):
        self.entered.set()
        self.go.wait(30)
        return self._scorer.embed_and_score(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._scorer, name)


def test_a_processor_whose_results_cannot_be_delivered_rewinds_and_carries_on(settings, scorer, photos, caplog):
    from labkit.lab_client import LabClient
    from labkit.processor import Processor

    broker_port, proxy_port = free_port(), free_port()
    network = ChaosProxy(proxy_port, broker_port).start()
    broker = make_broker(broker_port, advertised_port=proxy_port).start()
    own = settings.model_copy(update={"bootstrap": broker.bootstrap_servers})
    create_topics(own)
    held = _HeldScorer(scorer)
    processor = Processor(own, held, name="rewinding-processor").start_in_thread()
    caplog.set_level(logging.WARNING, logger="labkit.processor")
    try:
        with LabClient(own) as lab:
            ids = lab.submit_many(photos[:3])
            assert held.entered.wait(30)  # the batch is polled and being scored...
            network.cut()  # ...when Kafka becomes unreachable
            held.go.set()
            _wait_until(lambda: _logged(caplog, "Re-reading"), "the processor to give up on the unacknowledged results")
            assert processor.running and processor.error is None  # it rewound instead of dying
            network.restore()
            for request_id in ids:
                assert lab.wait(request_id, timeout=60).status == "ok"
    finally:
        processor.stop()
        network.cut()
        broker.stop()


class _StallThenCut:
    """The session's real scorer with two cues.

    Its first batch stalls until ``release``; its second cuts the network.
    """

    def __init__(self, scorer, network: ChaosProxy):
        self._scorer, self._network = scorer, network
        self.stalled, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def embed_and_score(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 1:
            self.stalled.set()
            self.release.wait(60)
        elif self.calls == 2:
            self._network.cut()
        return self._scorer.embed_and_score(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._scorer, name)


def test_kafka_cut_while_partitions_are_revoked_the_processor_rewinds_and_loses_nothing(
    settings, scorer, photos, caplog
):
    """The batch in hand is finished inside the revoke callback (inside ``poll``), and Kafka is gone right then.

    Staged for real, in this order: four requests wait in one partition; the processor polls
    them as two batches of two (batch 2 is polled while batch 1 is scored). Batch 1's scoring
    stalls past ``max.poll.interval.ms``, so librdkafka drops the member from the group (its
    member id goes) and queues the revocation of its partition. Batch 1 is then produced (its
    commit is refused: we are no longer a member); the next poll serves the revocation, whose
    callback finishes batch 2 — and scoring batch 2 cuts the network, so its results are never
    acknowledged. The processor must rewind and carry on, and once the network is back every
    request is answered (nothing was committed past what was acknowledged).
    """
    from labkit.lab_client import LabClient
    from labkit.processor import Processor

    broker_port, proxy_port = free_port(), free_port()
    network = ChaosProxy(proxy_port, broker_port).start()
    broker = make_broker(broker_port, advertised_port=proxy_port).start()
    own = settings.model_copy(
        update={
            "bootstrap": broker.bootstrap_servers,
            "partitions": 1,
            "max_batch_size": 2,
            "max_poll_interval_ms": settings.session_timeout_ms,
        }
    )
    create_topics(own)
    cue = _StallThenCut(scorer, network)
    caplog.set_level(logging.INFO, logger="labkit.processor")
    processor = Processor(own, cue, name="revoked-processor")
    try:
        with LabClient(own) as lab:
            ids = lab.submit_many(photos[:4])  # all waiting before the processor starts: two batches of two
            processor.start_in_thread()
            assert cue.stalled.wait(30)  # batch 1 is being scored, batch 2 polled behind it
            _wait_until(lambda: processor.member_id is None, "the group to drop the stalled member", timeout=30)
            cue.release.set()
            _wait_until(
                lambda: _logged(caplog, "Re-reading") or not processor.running, "the processor to rewind", timeout=60
            )
            assert processor.running and processor.error is None, processor.error  # not ended from inside poll()
            assert _logged(caplog, "not acknowledged while partitions [0] were revoked")  # batch 2, in the callback
            assert cue.calls == 2  # batch 2 was scored once, inside the revoke callback
            network.restore()
            for request_id in ids:  # the group gives the partition back and it is re-read from the last commit
                assert lab.wait(request_id, timeout=60).status == "ok"
    finally:
        processor.stop()
        network.cut()
        broker.stop()


def test_a_sender_whose_producer_was_fenced_starts_a_new_one(settings, photos, monkeypatch):
    """A fatal error reaches the sender as librdkafka delivers it: through the ``error_cb`` its producer was made with.

    librdkafka offers no way to make a producer fatal from Python (``rd_kafka_test_fatal_error``
    is not exposed), and the broker here never sends the errors that would: a Tansu restart
    leaves an idempotent producer timing out forever, not fenced. So the test keeps the
    ``error_cb`` the sender really passes to ``make_producer`` and calls it with a real fatal
    ``KafkaError(_FENCED, fatal=True)``, exactly as librdkafka's poll would. Then the next
    upload must go through a new producer and land in the topic.
    """
    from confluent_kafka import KafkaError

    import labkit.request_sender
    from labkit.kafka.producer import producer_is_done_for
    from labkit.request_sender import RequestSender

    assert producer_is_done_for(KafkaError(KafkaError.PRODUCER_FENCED))  # seen from the embedded broker after an outage
    assert not producer_is_done_for(KafkaError(KafkaError._TRANSPORT))  # a dropped connection: librdkafka retries
    create_topics(settings)
    error_callbacks = []

    def make_producer(*args, **kwargs):
        error_callbacks.append(kwargs["error_cb"])
        return real_make_producer(*args, **kwargs)

    real_make_producer = labkit.request_sender.make_producer
    monkeypatch.setattr(labkit.request_sender, "make_producer", make_producer)
    sender = RequestSender(settings, client_id="fenced-sender")
    try:
        before, _, acked = sender.send(photos[0].read_bytes(), "before.jpg")
        acked.result(15)
        fenced = sender.producer
        error_callbacks[-1](KafkaError(KafkaError._FENCED, "Producer fenced by a newer instance", fatal=True))
        after, _, acked = sender.send(photos[1].read_bytes(), "after.jpg")
        assert sender.producer is not fenced and len(error_callbacks) == 2
        assert acked.result(15)[1] >= 0  # the new producer delivers...
        _wait_until(
            lambda: (
                {before.request_id, after.request_id}
                <= {m.key().decode() for m in read_topic(settings, settings.requests_topic, idle_s=0.3)}
            ),
            "both requests in the topic",
        )
        # ...and a second fatal report from the old producer changes nothing: only the current one is renewed.
        error_callbacks[0](KafkaError(KafkaError._FENCED, "late report of the old producer", fatal=True))
        assert sender.producers.get() is sender.producer and len(error_callbacks) == 2
    finally:
        sender.close()
