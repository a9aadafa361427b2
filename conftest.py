"""pytest set-up for the whole suite.

Everything started from the tests (notebook kernels, `labkit up`, processors) inherits these
variables: the random test model (no model hub here) and ports of this test session's own, never
a user's 9092 or 8080.
"""

import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from labkit._net import free_port, free_ports

#: The engine every test runs on, and every `labkit` the tests start: LABKIT_TEST_ENGINE=tansu (default) or kafka
#: (Apache Kafka), with LABKIT_TEST_BROKERS nodes (default 1). .ci/run runs the suite on both.
ENGINE = os.environ.get("LABKIT_TEST_ENGINE", "tansu")
BROKERS = int(os.environ.get("LABKIT_TEST_BROKERS", "1"))

#: The throw-away folders this process made (not a user's own LABKIT_* folders): removed when the run ends.
_MADE: list[Path] = []


def _folder(variable: str, prefix: str) -> None:
    if variable not in os.environ:
        os.environ[variable] = tempfile.mkdtemp(prefix=prefix)
        _MADE.append(Path(os.environ[variable]))


def pytest_configure(config):
    os.environ.setdefault("LABKIT_MODEL", "test-tiny")
    os.environ["LABKIT_ENGINE"], os.environ["LABKIT_BROKERS"] = ENGINE, str(BROKERS)
    if getattr(config.option, "numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        return  # pytest-xdist's controller: each worker (its own process) picks its own ports and folders below
    os.environ.setdefault("LABKIT_BROKER_PORT", str(free_ports(BROKERS)))  # node N listens on this + N - 1
    os.environ.setdefault("LABKIT_WEB_PORT", str(free_port()))
    # Exported ONNX towers go to a throw-away folder, not the user's cache.
    _folder("LABKIT_ONNX_CACHE_DIR", "labkit-onnx-")
    # The history's embedded PostgreSQL too (labkit.history): never the user's ~/.local/share/labkit.
    _folder("LABKIT_HISTORY_DIR", "labkit-history-")


def pytest_unconfigure(config):
    """Remove this run's folders; a PostgreSQL still running in one is stopped first, and reported.

    labkit's keeper (``labkit/history/keeper.py``) stops the embedded server once no process uses
    it, however they ended (``tests/test_history_server.py``). One still running here is a leak:
    it is named on stderr, then stopped, so it does not outlive the run either way.
    """
    for folder in _MADE:
        pid_file = folder / "postgres" / "postmaster.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            try:
                os.kill(pid, 0)
                print(f"\nlabkit: a PostgreSQL (pid {pid}) was left running in {folder}; stopping it", file=sys.stderr)
                os.kill(pid, signal.SIGINT)  # PostgreSQL's "fast" shutdown
                deadline = time.monotonic() + 10
                while pid_file.exists() and time.monotonic() < deadline:
                    time.sleep(0.05)
            except ProcessLookupError:
                pass  # already gone
        shutil.rmtree(folder, ignore_errors=True)


#: The longest file first: pytest-xdist hands out files in collection order, so the learner's path (about half of
#: the suite's time, in one module-scoped stack) starts at once on one worker while the other takes the rest.
LONGEST_FIRST = ("test_learner_path.py", "test_learner_path_part2.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)  # stable: the order within a file is kept
