"""The embedded PostgreSQL's life: however a lab ends, no server is left running, and one left by a crash is adopted.

Each test looks for the server itself in the process table (a ``postgres`` process started on
the test's data folder), not at labkit's bookkeeping. They share one data folder, so ``initdb``
runs once; each starts with no server running there and leaves none.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from labkit._net import free_port
from labkit._process import is_running
from labkit.history.database import embedded_url, release_embedded
from labkit.history.embedded import Place, keeper_pid, postmaster, stop_postgres


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A history folder of this module's own (``<home>/postgres`` is the server's data folder)."""
    folder = tmp_path_factory.mktemp("history")
    yield folder
    stop_postgres(folder / "postgres")  # only if a test failed half-way: each leaves none running


@pytest.fixture
def pgdata(home):
    """The data folder, with no server running on it when the test starts.

    Each test ends by waiting for its server to stop; one that failed half-way may leave its
    server to its keeper, which stops it within seconds. Waiting for that here keeps one failure
    from being reported again as every later test's.
    """
    _until(lambda: not _servers(home / "postgres"), 15, "a server from an earlier test is still running")
    return home / "postgres"


def _servers(pgdata: Path) -> list[psutil.Process]:
    """The running PostgreSQL servers started on ``pgdata``, found by their command line (``postgres -D <pgdata>``)."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        command = process.info["cmdline"] or []
        if process.info["name"] == "postgres" and str(pgdata.resolve()) in command and is_running(process.pid):
            found.append(process)
    return found


def _until(condition, timeout: float, what: str) -> None:
    """Return once ``condition()`` holds; fail, saying ``what`` was awaited, after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"after {timeout:.0f} s: {what}"
        time.sleep(0.05)


def _stopped(pgdata: Path) -> None:
    """The server on ``pgdata`` stops soon, its keeper with it, and the keeper's record goes."""
    _until(lambda: not _servers(pgdata), 15, f"PostgreSQL still runs on {pgdata}: {_servers(pgdata)}")
    _until(lambda: not Place.of(pgdata).owner.exists(), 5, "the keeper did not remove owner.json")


def _env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a labkit process whose history is the embedded server in ``home``."""
    env = {**os.environ, "LABKIT_HISTORY_DIR": str(home), **extra}
    env.pop("LABKIT_DATABASE_URL", None)
    return env


def _python_that_opened_the_history(home: Path) -> subprocess.Popen:
    """A Python process (as a notebook kernel is) that has opened the history and then just runs."""
    code = (
        "import sys, time\n"
        "from labkit.config import Settings\n"
        "from labkit.history import open_database\n"
        "open_database(Settings())\n"
        "print('opened', flush=True)\n"
        "time.sleep(300)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], env=_env(home), stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], 60)
    assert readable and process.stdout.readline().strip() == "opened", "the process did not open the history"
    return process


def test_a_killed_python_process_that_opened_the_history_leaves_no_postgresql(home, pgdata):
    kernel = _python_that_opened_the_history(home)
    assert len(_servers(pgdata)) == 1 and keeper_pid(Place.of(pgdata))
    kernel.kill()  # SIGKILL, as a notebook kernel killed or restarted: nothing of labkit runs on the way out
    kernel.wait()
    _stopped(pgdata)


def test_a_sigkilled_sink_leaves_no_postgresql(settings, home, pgdata):
    from test_cli import Running

    from labkit.kafka.admin import create_topics

    create_topics(settings)
    # Running reads the output in a thread of its own: a select() on the pipe followed by readline()
    # misses a line that arrived in the same read as the one before it (it waits in Python's buffer).
    sink = Running("sink", env=_env(home, **{k: v for k, v in settings.to_env().items() if k != "LABKIT_HISTORY_DIR"}))
    try:
        sink.wait_for("sink ready", timeout=90)
        assert len(_servers(pgdata)) == 1
    finally:
        sink.process.kill()  # SIGKILL the sink alone: its keeper, in a session of its own, must notice
        sink.process.wait()
    _stopped(pgdata)


def test_a_server_left_by_a_crashed_owner_is_adopted_by_the_next_start_and_stops_with_it(home, pgdata):
    place = Place.of(pgdata)
    kernel = _python_that_opened_the_history(home)
    crashed = keeper_pid(place)
    assert crashed is not None
    server = postmaster(pgdata)
    assert server is not None
    # The owner dies without a word (killed with everything around it), then the last process that used the server.
    os.kill(crashed, signal.SIGKILL)
    _until(lambda: not is_running(crashed), 10, "the keeper did not die")
    kernel.kill()
    kernel.wait()
    assert _servers(pgdata) == [server] and json.loads(place.owner.read_text())["pid"] == crashed  # left behind

    # The next process to open the history finds the owner gone: a new keeper adopts the running server.
    url = embedded_url(home)
    try:
        adopter = keeper_pid(place)
        assert adopter not in (None, crashed) and postmaster(pgdata) == server
        import psycopg

        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT pg_backend_pid() > 0").fetchone() == (True,)
    finally:
        release_embedded(home)  # the only process that uses it lets go: it stops at once
    assert not _servers(pgdata)
    _stopped(pgdata)


def _labkit_up_with_history(settings, home):
    """``labkit up`` on the session's broker with its sink and web app, but no processor; and its web port."""
    from test_cli import Running

    web_port = free_port()
    env = _env(home, **{k: v for k, v in settings.to_env().items() if k != "LABKIT_HISTORY_DIR"})
    env.update(LABKIT_WEB_PORT=str(web_port), LABKIT_TASKS="clip", LABKIT_LOG_LEVEL="WARNING")
    return Running("up", "--processors", "0", env=env), web_port


def test_labkit_up_stopped_with_ctrl_c_leaves_no_postgresql_even_after_its_sink_was_sigkilled(settings, home, pgdata):
    up, web_port = _labkit_up_with_history(settings, home)
    try:
        up.wait_for("Press Ctrl-C")
        assert httpx.get(f"http://127.0.0.1:{web_port}/api/history", timeout=30).status_code == 200  # the page asks
        assert len(_servers(pgdata)) == 1
        sink = next(child for child in up.children() if "sink" in child.cmdline())
        sink.kill()  # the supervisor starts another; the server keeps running for the web app meanwhile
        up.wait_for(r"\| restarted sink \(pid \d+\)", timeout=30)
        assert httpx.get(f"http://127.0.0.1:{web_port}/api/history", timeout=30).status_code == 200
        assert len(_servers(pgdata)) == 1
    finally:
        code = up.stop()  # Ctrl-C
    assert code == 0, up.output[-3000:]
    _stopped(pgdata)


def test_a_sigkilled_labkit_up_leaves_no_postgresql_once_its_children_have_stopped(settings, home, pgdata):
    up, web_port = _labkit_up_with_history(settings, home)
    try:
        up.wait_for("Press Ctrl-C")
        assert httpx.get(f"http://127.0.0.1:{web_port}/api/history", timeout=30).status_code == 200  # both joined
        assert len(_servers(pgdata)) == 1
        keeper = keeper_pid(Place.of(pgdata))
        # Everything `labkit up` started (the server and its keeper belong to no lab: they are not awaited here).
        family = [child for child in up.children(recursive=True) if child.pid != keeper and child.name() != "postgres"]
        assert any("sink" in " ".join(child.cmdline()) for child in family), family
        up.process.kill()  # SIGKILL: nothing of `labkit up` runs on the way out; its children get SIGTERM (PDEATHSIG)
        up.process.wait()
        _, left = psutil.wait_procs(family, timeout=30)
        assert not left, f"still running 30 s after `labkit up` was killed: {left}"
    finally:
        up.kill()  # whatever is left of it (nothing, if the test passed)
    _stopped(pgdata)
