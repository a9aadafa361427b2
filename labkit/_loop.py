"""A background thread repeating a step until stopped: the shape of every labkit poller and refresher."""

from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class ThreadLoop:
    """Call ``step()`` again and again on a daemon thread, ``every`` seconds apart, until :meth:`stop`.

    ``step`` does one unit of work (poll a client once, refresh a widget once). An exception in it
    is logged with ``what_failed`` and the loop carries on: one bad record or callback must not
    stop the thread that serves everyone else. ``on_exit`` runs once on the loop's own thread when
    it ends (e.g. to close the Kafka client it polled, which must happen on that thread's watch).
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], object],  # what it returns is ignored
        every: float = 0.0,
        on_exit: Callable[[], None] | None = None,
        what_failed: str | None = None,
    ):
        self.name = name
        self._step = step
        self._every = every
        self._on_exit = on_exit
        self._what_failed = what_failed or f"{name} failed one step; it carries on"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "ThreadLoop":
        """Start the thread (once); returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:
                    log.exception(self._what_failed)
                if self._every and self._stop.wait(self._every):
                    break
        finally:
            if self._on_exit is not None:
                try:
                    self._on_exit()
                except Exception:
                    log.exception("%s: clean-up at exit failed", self.name)

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was asked for."""
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5) -> None:
        """Ask the loop to end after its current step and wait up to ``timeout`` s.

        It does not wait when called from the loop itself.
        """
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
