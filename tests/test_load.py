"""Load: 1,000 uploads from 50 concurrent clients through real processes — nothing lost, no 5xx, backpressure with Retry-After, memory bounded."""

from __future__ import annotations

from labkit.bench.load import load_test


def test_a_thousand_uploads_from_fifty_clients_all_come_back(settings, photos):
    # A backlog limit below the number of clients, so the 429 + Retry-After path is exercised too.
    tight = settings.model_copy(update={"max_pending_uploads": 20})
    report = load_test(tight, [p.read_bytes() for p in photos[:40]], uploads=1000, clients=50)
    print(report)  # the figures, for the log
    assert report["results"] == 1000 and report["lost"] == 0
    assert report["http"][202] == 1000
    assert report["http"].get(429, 0) > 0  # the backlog limit answered "later", and the clients came back
    assert not [code for code in report["http"] if code >= 500]
    # Bounded memory: the web app holds results and pending uploads in bounded structures.
    assert report["web_rss_mb_at_end"] - report["web_rss_mb_after_warmup"] < 60
