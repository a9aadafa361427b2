"""Load: 1,000 uploads from 50 concurrent clients through real processes.

Nothing lost, no 5xx, backpressure with Retry-After, memory bounded.
"""

from __future__ import annotations

from collections import Counter

from labkit._net import free_port
from labkit.bench.load import load_test, rss_mb, run_load
from labkit.kafka.admin import read_topic
from labkit.ops.stack import Stack
from labkit.records.wire import ScoreResult


def test_a_thousand_uploads_from_fifty_clients_all_come_back(settings, photos):
    # A backlog limit below the number of clients, so the 429 + Retry-After path is exercised too.
    # A processor and the web app, each a process, on the session's broker and the test's own topics
    # (load_test would start a broker of its own, and stop it before the topics could be read).
    tight = settings.model_copy(update={"max_pending_uploads": 20, "web_port": free_port(), "web_host": "127.0.0.1"})
    images = [p.read_bytes() for p in photos[:40]]
    url = f"http://127.0.0.1:{tight.web_port}"
    stack = Stack(tight, web=True, processors=1, echo=False).start()
    try:
        web_pid = next(c.process.pid for c in stack.children if c.name == "web")
        warm_up = run_load(url, images, 20, 4)  # connections, caches, first batches
        before = rss_mb(web_pid, "VmRSS")
        report = load_test(tight, images, uploads=1000, clients=50, url=url)  # + 20 uploads of its own warm-up
        after = rss_mb(web_pid, "VmRSS")
    finally:
        stack.stop()
    print(report, f"web RSS {before:.0f} → {after:.0f} MB")  # the figures, for the log
    assert report["results"] == 1000 and report["lost"] == 0 and report["failed"] == 0
    assert report["http"][202] == 1000
    assert report["http"].get(429, 0) > 0  # the backlog limit answered "later", and the clients came back
    assert not [code for code in report["http"] if code >= 500]

    # What Kafka holds, read back outside any group: one request record per accepted upload, and
    # for every request id exactly one result (nobody crashed, so at-least-once made no duplicates),
    # a successful one, and no result for anything that was never asked.
    accepted = warm_up.statuses[202] + 20 + report["http"][202]
    requests = Counter(m.key().decode() for m in read_topic(tight, tight.requests_topic, limit=5000))
    results = [ScoreResult.from_json(m.value()) for m in read_topic(tight, tight.results_topic, limit=5000)]
    answered = Counter(result.request_id for result in results)
    assert len(requests) == accepted and set(requests.values()) == {1}, "a request record missing or sent twice"
    missing, unasked = set(requests) - set(answered), set(answered) - set(requests)
    assert not missing, f"{len(missing)} accepted request(s) have no result, e.g. {sorted(missing)[:3]}"
    assert not unasked, f"results for request ids nobody sent: {sorted(unasked)[:3]}"
    twice = {request_id: n for request_id, n in answered.items() if n > 1}
    assert not twice, f"{len(twice)} request(s) answered more than once: {dict(list(twice.items())[:3])}"
    assert {result.status for result in results} == {"ok"}
    assert not read_topic(tight, tight.dead_letter_topic, idle_s=0.5)

    # Bounded memory: the web app holds results and pending uploads in bounded structures.
    assert after - before < 60


def test_an_upload_without_a_result_counts_as_lost_not_as_fast(web, photos):
    """The load generator can fail: with no processor running, every accepted upload is counted lost."""
    from labkit.bench.load import run_load

    web.processor.stop()
    result = run_load(web.url, [photos[0].read_bytes()], uploads=3, concurrency=3, timeout=3)
    assert result.statuses[202] == 3 and len(result.lost) == 3 and not result.failed and not result.latencies_ms
