"""Shared fixtures: one real broker per test session, the random test model, the sample photos.

The broker is the engine LABKIT_TEST_ENGINE names, on free ports.

No Kafka mocks: every test talks to the broker over TCP through confluent-kafka, as the
services do. Each test gets its own topic names and consumer group, so tests never see each
other's records.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from labkit._net import free_port
from labkit.config import Settings
from labkit.kafka.engines import make_broker

REPO = Path(__file__).resolve().parents[1]
# OpenAI's CLIP sample photos (MIT), kept in the repository (tests/data/photos/README.md);
# LABKIT_TEST_PHOTOS points the tests at another copy laid out the same way.
PHOTOS = Path(os.environ.get("LABKIT_TEST_PHOTOS") or REPO / "tests" / "data" / "photos")


@pytest.fixture(scope="session")
def broker():
    """The session's broker, on the port the root conftest.py chose.

    The engine is the one ``LABKIT_TEST_ENGINE`` names: Tansu by default, or Apache Kafka with
    ``LABKIT_TEST_BROKERS`` nodes, whose logs go to test-artifacts/.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    brokers = int(os.environ.get("LABKIT_BROKERS", "1"))
    logs = REPO / "test-artifacts" / f"kafka-{worker}"
    with make_broker(int(os.environ["LABKIT_BROKER_PORT"]), brokers=brokers, log_dir=logs) as running:
        yield running


@pytest.fixture
def settings(broker) -> Settings:
    """Settings pointing at the session broker, with topics and groups unique to this test, for the CLIP task."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        bootstrap=broker.bootstrap_servers,
        model="test-tiny",
        requests_topic=f"requests-{tag}",
        results_topic=f"results-{tag}",
        dead_letter_topic=f"dlq-{tag}",
        embeddings_topic=f"embeddings-{tag}",
        group_prefix=f"processors-{tag}",
        tasks="clip",  # what the web app waits for; a test of several tasks says so (model_copy, tasks="clip,ocr")
        partitions=3,
        connect_timeout_s=5,
        max_batch_wait_ms=10,
    )


@pytest.fixture(scope="session")
def scorer():
    """The random test-tiny CLIP, loaded once per session (the processors in threads share it)."""
    from labkit.clip import build_scorer

    # torch-fp32 on purpose: tests compare other backends against this reference tower.
    return build_scorer(
        Settings(model="test-tiny", backend="torch-fp32", onnx_cache_dir=os.environ["LABKIT_ONNX_CACHE_DIR"])
    )


@pytest.fixture(scope="session")
def photos() -> list[Path]:
    """The 100 labelled photos, in name order. They ship with the tests: missing ones fail, not skip."""
    images = sorted((PHOTOS / "images").glob("*.jpg"))
    if len(images) != 100:
        pytest.fail(
            f"expected the 100 sample photos in {PHOTOS / 'images'}, found {len(images)} "
            "(tests/data/photos is part of the repository; LABKIT_TEST_PHOTOS overrides it)",
            pytrace=False,
        )
    return images


@pytest.fixture(scope="session")
def photo_labels() -> dict[str, str]:
    lines = (PHOTOS / "labels.csv").read_text().splitlines()
    return dict(line.split(",", 1) for line in lines if line and not line.startswith("file,"))


@pytest.fixture(scope="session")
def text_reader():
    """The real PP-OCRv4 reader (rapidocr-onnxruntime), loaded once per session; OCR processors in threads share it."""
    from labkit.tasks import TextReader

    return TextReader()


@pytest.fixture
def start_processor(settings, scorer, request):
    """Start processors in the test's groups: ``start_processor()`` → a Processor on a thread, with partitions.

    ``task="ocr"`` starts one of the OCR task (its own group, ``<group_prefix>-ocr``) with the
    session's text reader; the default is the CLIP task with the session's test-tiny scorer.
    ``model`` replaces the session's model (e.g. one that fails on cue).
    """
    from labkit.kafka.admin import create_topics

    create_topics(settings)
    started = []

    def start(name=None, wait=True, task="clip", model=None):
        from labkit.processor import Processor
        from labkit.tasks import build_task

        own = settings.for_task(task)
        if model is None:
            model = scorer if task == "clip" else request.getfixturevalue("text_reader") if task == "ocr" else None
        processor = Processor(own, task=build_task(own, model), name=name or f"test-processor-{len(started)}")
        started.append(processor)
        return processor.start_in_thread(30, wait=wait)

    yield start
    for runner in started:
        runner.stop()


class WebServer:
    """A real uvicorn server running the labkit app in a thread, on a free port."""

    def __init__(self, settings):
        self.port = free_port()
        from labkit.web import create_app

        config = uvicorn.Config(
            create_app(settings.model_copy(update={"web_port": self.port})),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "web app did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@contextmanager
def sink_on_a_thread(settings, **options):
    """The history's sink (``Sink(settings, database, **options)``) running on a thread; stopped on exit."""
    from labkit.history import Sink, open_database

    sink = Sink(settings, open_database(settings), **options)
    running = threading.Thread(target=sink.run, name="sink", daemon=True)
    running.start()
    try:
        yield sink
    finally:
        sink.stop()
        running.join(30)


@pytest.fixture
def web(settings, start_processor):
    """The web app in a thread with one processor (``web.processor``) in the test's group."""
    processor = start_processor()
    with WebServer(settings) as server:
        server.processor = processor
        yield server


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's outcome on the test item (the browser fixture screenshots failures)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def embedded_postgres():
    """labkit's embedded PostgreSQL (with pgvector), started once per session in its history folder.

    It is stopped at the session's end (it would stop by itself once this process exits: the root
    conftest.py removes the folder).
    """
    from labkit.history.database import embedded_url, release_embedded

    history_dir = Path(os.environ["LABKIT_HISTORY_DIR"])
    yield embedded_url(history_dir)
    release_embedded(history_dir)


#: The machine's own PostgreSQL (no pgvector): the history must work there too.
#: LABKIT_TEST_SERVER_DATABASE overrides it.
SERVER_DATABASE = os.environ.get("LABKIT_TEST_SERVER_DATABASE", "postgresql://postgres@127.0.0.1:5432/test")


def _fresh_database(url: str, ask) -> str:
    """Create a database of this test's own on the server at ``url``; its URL."""
    import psycopg
    from psycopg import sql

    name = f"labkit_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    head, _, query = url.partition("?")
    own = f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")
    ask.addfinalizer(lambda: _drop_database(url, name, own))
    return own


def _drop_database(url: str, name: str, own: str) -> None:
    """Close this process's pool for the test's database ``own``, then drop it (cutting any other connection)."""
    import psycopg
    from psycopg import sql

    from labkit.history.database import close_pools

    close_pools(own)
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(params=["embedded", "server"])
def history_settings(request, settings):
    """Settings whose history is a fresh database, on the embedded PostgreSQL or on the machine's own.

    The embedded one has pgvector, the machine's none; the latter is skipped, saying why, where no
    such server answers.
    """
    if request.param == "embedded":
        url = _fresh_database(request.getfixturevalue("embedded_postgres"), request)
    else:
        import psycopg

        try:
            url = _fresh_database(SERVER_DATABASE, request)
        except psycopg.OperationalError as exc:
            pytest.skip(f"no PostgreSQL server at {SERVER_DATABASE} ({str(exc).strip()[:80]})")
    from pydantic import SecretStr

    return settings.model_copy(update={"database_url": SecretStr(url)})


@pytest.fixture
def embedded_history(settings, embedded_postgres, request):
    """Settings whose history is a fresh database on the embedded PostgreSQL only (where which does not matter)."""
    from pydantic import SecretStr

    return settings.model_copy(update={"database_url": SecretStr(_fresh_database(embedded_postgres, request))})
