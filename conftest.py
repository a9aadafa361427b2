"""pytest set-up for the whole suite.

Everything started from the tests (notebook kernels, `labkit up`, processors) inherits these variables: the random test model (no model hub here) and
ports of this test session's own, never a user's 9092 or 8080.
"""

import os
import tempfile

from labkit.broker import free_port


def pytest_configure(config):
    os.environ.setdefault("LABKIT_MODEL", "test-tiny")
    os.environ.setdefault("LABKIT_BROKER_PORT", str(free_port()))
    os.environ.setdefault("LABKIT_WEB_PORT", str(free_port()))
    # Exported ONNX towers go to a throw-away folder, not the user's cache.
    os.environ.setdefault("LABKIT_ONNX_CACHE_DIR", tempfile.mkdtemp(prefix="labkit-onnx-"))
    # The history's embedded PostgreSQL too (labkit.history): never the user's ~/.local/share/labkit.
    os.environ.setdefault("LABKIT_HISTORY_DIR", tempfile.mkdtemp(prefix="labkit-history-"))
