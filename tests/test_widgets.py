"""The notebook widgets against the real broker.

Uploads reach the pipeline, the table and plots fill, threads stop on close.
"""

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
    from labkit.kafka.admin import create_topics

    create_topics(settings)
    with LabClient(settings) as lab:
        lab.submit_many(photos[:5])
    inspector = KafkaInspector(settings, refresh_s=0.2)
    try:
        table, _ = inspector.snapshot()
        # Nobody has processed them: nothing committed, and the plot counts the whole log as waiting.
        # Apache Kafka advances the end offset per record, Tansu per record *batch* (tests/test_engines.py).
        ends = table["high"].sum() - table["low"].sum()
        assert (ends == 5 if settings.engine == "kafka" else 1 <= ends <= 5) and table["committed"].isna().all()
        _wait_until(lambda: len(inspector.history) >= 3)
        assert inspector.history[-1][1] == table["high"].sum() - table["low"].sum()
        assert bytes(inspector.plot.value).startswith(b"\x89PNG")
    finally:
        inspector.close()
    assert not inspector._loop.alive


def test_service_logs_are_time_stamped_merged_filtered_and_capped(tmp_path, monkeypatch):
    from labkit import _logging

    monkeypatch.setattr(_logging, "SERVICE_LOG_BYTES", 2_000)
    web, processor = _logging.ServiceLogFile(tmp_path, "web"), _logging.ServiceLogFile(tmp_path, "processor2")
    web.write("accepted abc123 (cat.jpg) → image-requests[1]@7")
    processor.write("scored abc123 (p1@7) → cat 90.0%")
    web.write("result abc123 ok by processor-x → 1 socket(s), 42 ms after upload")
    web.write("accepted other999 (dog.jpg) → image-requests[0]@3")
    trail = _logging.read_service_logs(tmp_path, contains="abc123")
    assert [line.split(" | ")[0].split()[1] for line in trail] == ["web", "processor2", "web"]  # in time order
    assert trail[1].endswith("| scored abc123 (p1@7) → cat 90.0%") and trail[0][:4].isdigit()
    assert _logging.read_service_logs(tmp_path, services=["processor"]) == [trail[1]]  # processor2 is a processor
    assert len(_logging.read_service_logs(tmp_path, last=2)) == 2
    for i in range(500):  # far more than the cap: the file rotates, keeping one older file
        web.write(f"line {i:04d} " + "x" * 40)
    web.close()
    processor.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["processor2.log", "web.log", "web.log.1"]
    assert all(p.stat().st_size <= 2_000 for p in tmp_path.iterdir())
    assert _logging.read_service_logs(tmp_path, last=1)[0].endswith("line 0499 " + "x" * 40)
    assert _logging.read_service_logs(tmp_path / "missing") == []


def test_the_stack_writes_each_part_to_its_log_file_and_tells_the_children_where(tmp_path):
    import sys

    from labkit.config import Settings
    from labkit.ops.stack import Stack
    from labkit.widgets import log_lines

    settings = Settings(log_dir=tmp_path / "logs", web_port=1)
    assert Settings(web_port=8123).service_log_dir.name.endswith("-8123")  # a kernel finds it from its settings
    stack = Stack(settings, echo=False)
    try:
        child = stack._spawn(
            "talker", [sys.executable, "-c", "import os; print('log dir is', os.environ['LABKIT_LOG_DIR'])"]
        )
        child.process.wait(10)
        _wait_until(lambda: log_lines(settings, services=["talker"]), timeout=10)
    finally:
        stack.stop()
    assert log_lines(settings, services=["talker"])[0].endswith(f"talker | log dir is {tmp_path / 'logs'}")


def test_log_view_follows_a_filter_and_says_what_to_do_when_empty(tmp_path):
    from labkit import _logging
    from labkit.config import Settings
    from labkit.widgets import LogView

    settings = Settings(log_dir=tmp_path, web_port=8765)
    view = LogView(settings, refresh_s=0.1)
    try:
        assert "no matching lines" in view.view.value and "8765" in view.view.value
        log = _logging.ServiceLogFile(tmp_path, "web")
        log.write("accepted <abc> one")
        log.write("accepted def two")
        _wait_until(lambda: "def two" in view.view.value)  # live: the thread picks up new lines
        assert "&lt;abc&gt; one" in view.view.value  # escaped HTML
        view.filter.value = "def"
        assert [line.split(" | ")[1] for line in view.lines()] == ["accepted def two"]
        assert "abc" not in view.view.value  # refreshed as soon as the filter changed
        log.close()
    finally:
        view.close()
    assert not view._loop.alive


def test_lab_client_waits_per_task_and_frames_a_row_per_photo_with_each_task(settings, start_processor, photos):
    """CLIP scores for real; the OCR result is written by hand onto the results topic, as its processor would."""
    import pytest
    from test_web import _ocr_result, _produce_result

    from labkit.errors import WireFormatError

    both = settings.model_copy(update={"tasks": "clip,ocr"})
    start_processor()
    with LabClient(both) as lab:
        both_ids = lab.submit_many(photos[:2])
        only_clip = lab.submit(photos[2], tasks=["clip"])
        assert lab.expected(both_ids[0]) == ("clip", "ocr") and lab.expected(only_clip) == ("clip",)
        with pytest.raises(ValueError, match="tasks=\\['ocr'\\]"):
            lab.wait(only_clip, task="ocr")  # never asked for: no waiting in vain
        with pytest.raises(WireFormatError, match="choose from clip, ocr"):
            lab.submit(photos[3], tasks=["colours"])
        assert lab.wait(both_ids[0]).task == "clip"  # CLIP's, while OCR has not answered
        with pytest.raises(TimeoutError, match="No ocr result .* --task ocr"):
            lab.wait_all(both_ids[0], timeout=0.5)
        _produce_result(both, _ocr_result(both_ids[0]))
        answers = lab.wait_all(both_ids[0])
        assert list(answers) == ["clip", "ocr"] and answers["ocr"].text.startswith("KAFKA STREAMS")
        assert lab.wait(both_ids[0], task="ocr") == answers["ocr"]
        assert set(lab.wait_all(only_clip)) == {"clip"}
        lab.wait(both_ids[1])
        frame = lab.results_frame().set_index("request_id")
    assert list(frame.index) == [*both_ids, only_clip]  # one row per photo, in sending order
    assert (
        frame.loc[both_ids[0], "ocr"] == " / ".join(answers["ocr"].text.splitlines())
        and frame.loc[both_ids[0], "ocr ms"] == 0
    )
    assert frame["ocr"].isna()[[both_ids[1], only_clip]].all() and frame["top label"].notna().all()
