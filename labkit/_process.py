"""Process helpers: child processes, stop signals and failpoints.

Children that die with their parent, stopping politely then firmly, Ctrl-C / SIGTERM, and failpoints.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import Callable

#: The signals that ask a labkit process to stop: Ctrl-C in a terminal, and what Compose, systemd and
#: ``labkit up`` send.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def on_stop_signal(handler: Callable[[], None]) -> None:
    """Call ``handler()`` (in the main thread) when this process is asked to stop by Ctrl-C or SIGTERM."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: handler())


def name_os_thread(name: str) -> None:
    """Name the calling thread for the OS (``top -H``, ``/proc/PID/task/TID/comm``); 15 bytes at most.

    Linux only (``prctl(PR_SET_NAME)``); elsewhere nothing happens. ``labkit bench`` reads
    these names to split a processor's CPU time between its threads.
    """
    try:
        import ctypes

        PR_SET_NAME = 15
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except OSError:
        pass


def write_json_atomically(path: Path, data: object) -> None:
    """Write ``data`` as JSON to ``path`` so a reader sees the old file or the new one, never half of one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def die_with_parent() -> None:
    """(Run in the child before exec.) Get SIGTERM if labkit dies, and stay out of its Ctrl-C.

    Linux only: ``prctl(PR_SET_PDEATHSIG)`` makes sure no broker or processor outlives a
    ``labkit up`` that was killed without cleaning up. A session of its own means a Ctrl-C in
    the terminal reaches labkit only, which then stops the children in order.
    """
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        os.setsid()
    except OSError:
        pass


def stop_process(process: subprocess.Popen | None, timeout: float = 10) -> None:
    """SIGTERM, wait up to ``timeout`` seconds for a clean exit, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def describe_exit(code: int) -> str:
    """``"code 3"``, or ``"code -9 (SIGKILL)"`` for a process that a signal killed."""
    try:
        return f"code {code}" + (f" ({signal.Signals(-code).name})" if code < 0 else "")
    except ValueError:
        return f"code {code}"


def is_running(pid: int) -> bool:
    """True while process ``pid`` runs; a zombie (exited, not yet reaped by its parent) counts as stopped.

    Safer than ``Popen.poll()`` from a second thread: while another thread is inside ``poll()``,
    CPython's answers "still running" without looking.
    """
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def parse_failpoint(value: str | None) -> tuple[str, int] | None:
    """``LABKIT_FAILPOINT``: ``"before-commit:3"`` → ``("before-commit", 3)`` (Settings checks the format)."""
    if not value:
        return None
    step, batch = value.split(":")
    return step, int(batch)


def crash_at_failpoint(failpoint: tuple[str, int] | None, step: str, batch: int, who: str) -> None:
    """SIGKILL this whole process (no clean-up, like a power cut) if ``failpoint`` is ``(step, batch)``."""
    if failpoint and failpoint == (step, batch):
        logging.getLogger(__name__).warning(
            "%s: failpoint %s:%d — killing this process now (SIGKILL, no clean-up)", who, step, batch
        )
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)
