"""The notebook widgets against the real broker: uploads reach the pipeline, the table and plots fill, threads stop on close."""

from __future__ import annotations

import time

from labkit.lab_client import LabClient
from labkit.widgets import KafkaInspector, LiveResults


def _wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_live_results_sends_uploads_refuses_non_images_and_draws_table_and_latency_plot(
    settings, start_processor, photos
):
    start_processor()
    with LabClient(settings) as lab:
        live = LiveResults(lab, refresh_s=0.1)
        try:
            ids = live.send(
                {photos[0].name: photos[0].read_bytes(), "notes.txt": b"not an image at all", photos[1].name: photos[1]}
            )
            assert len(ids) == 2  # the text file is refused, the photos after it still go
            assert "Sent 2 image(s)" in live.status.value and "notes.txt" in live.status.value
            for request_id in ids:
                lab.wait(request_id)
            _wait_until(lambda: photos[1].name in live.table.value and live.plot.value)  # the thread redraws
            assert bytes(live.plot.value).startswith(b"\x89PNG")
        finally:
            live.close()
        assert not live._loop.alive


def test_a_file_name_is_shown_escaped(settings, start_processor, photos):
    start_processor()
    with LabClient(settings) as lab:
        live = LiveResults(lab, refresh_s=60)
        try:
            live.send({"<img src=x onerror=alert(1)>.txt": b"nope"})
            assert "<img" not in live.status.value and "&lt;img" in live.status.value
        finally:
            live.close()


def test_inspector_reads_offsets_and_lag_then_stops(settings, photos):
    from labkit.admin import create_topics

    create_topics(settings)
    with LabClient(settings) as lab:
        lab.submit_many(photos[:5])
    inspector = KafkaInspector(settings, refresh_s=0.2)
    try:
        table, _ = inspector.snapshot()
        # Nobody has processed them: nothing committed, and the plot counts the whole log as waiting.
        # (The embedded broker advances the end offset per record *batch*, Apache Kafka per record.)
        assert table["high"].sum() > 0 and table["committed"].isna().all()
        _wait_until(lambda: len(inspector.history) >= 3)
        assert inspector.history[-1][1] == table["high"].sum() - table["low"].sum()
        assert bytes(inspector.plot.value).startswith(b"\x89PNG")
    finally:
        inspector.close()
    assert not inspector._loop.alive
