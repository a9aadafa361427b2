"""pytest set-up for the whole suite.

Everything started from the tests (notebook kernels, `labkit up`, processors) inherits these variables: the random test model (no model hub here) and
ports of this test session's own, never a user's 9092 or 8080.
"""

import os
import tempfile

from labkit.broker import free_port


def pytest_configure(config):
    os.environ.setdefault("LABKIT_MODEL", "test-tiny")
    if getattr(config.option, "numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        return  # pytest-xdist's controller: each worker (its own process) picks its own ports and folders below
    os.environ.setdefault("LABKIT_BROKER_PORT", str(free_port()))
    os.environ.setdefault("LABKIT_WEB_PORT", str(free_port()))
    # Exported ONNX towers go to a throw-away folder, not the user's cache.
    os.environ.setdefault("LABKIT_ONNX_CACHE_DIR", tempfile.mkdtemp(prefix="labkit-onnx-"))
    # The history's embedded PostgreSQL too (labkit.history): never the user's ~/.local/share/labkit.
    os.environ.setdefault("LABKIT_HISTORY_DIR", tempfile.mkdtemp(prefix="labkit-history-"))


#: The longest file first: pytest-xdist hands out files in collection order, so the learner's path (about half of
#: the suite's time, in one module-scoped stack) starts at once on one worker while the other takes the rest.
LONGEST_FIRST = ("test_learner_path.py",)


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name not in LONGEST_FIRST)  # stable: the order within a file is kept
