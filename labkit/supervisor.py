"""Restart a stack's children that die, with backoff, as Compose's ``restart: unless-stopped`` does."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .stack import Child


def describe_exit(code: int) -> str:
    """``"code 3"``, or ``"code -9 (SIGKILL)"`` for a process that a signal killed."""
    try:
        return f"code {code}" + (f" ({signal.Signals(-code).name})" if code < 0 else "")
    except ValueError:
        return f"code {code}"


@dataclass
class _Watch:
    delay: float  # the pause before the next restart
    fast_crashes: int = 0  # crashes in a row, each soon after its start
    restart_at: float | None = None  # when a dead child is due to start again


class Supervisor:
    """Restart dead children after 1, 2, 4 … 30 s; give up on one that keeps crashing right after its start.

    The others keep running meanwhile: a dead processor's partitions go to the ones left in the
    group. Call :meth:`check` every half second or so; it never blocks (a restarted child's
    "ready" line is not waited for).
    """

    first_delay = 1.0  # seconds before the first restart; doubles with every crash...
    max_delay = 30.0  # ...up to this
    stable_after = 60.0  # a child that was up this long starts again from first_delay
    fast_crash = 10.0  # a death this soon after the start counts as a fast crash
    max_fast_crashes = 5  # that many fast crashes in a row and we give up on the child

    def __init__(self, children: list[Child], say: Callable[[str], None]):
        self.children = children
        self.say = say
        self.given_up: list[Child] = []
        self._watches: dict[Child, _Watch] = {}

    def check(self, now: float | None = None) -> None:
        """Notice children that died, and start again those whose pause is over."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child in self.given_up:
                continue
            watch = self._watches.setdefault(child, _Watch(self.first_delay))
            if watch.restart_at is None and child.process.poll() is not None:
                self._died(child, watch, now)
            elif watch.restart_at is not None and now >= watch.restart_at:
                watch.restart_at = None
                child.start()  # from the main thread: the parent-death signal fires when the starting thread ends
                self.say(f"restarted {child.name} (pid {child.process.pid})")

    def _died(self, child: Child, watch: _Watch, now: float) -> None:
        up_for = now - child.started_at
        if up_for >= self.stable_after:
            watch.delay, watch.fast_crashes = self.first_delay, 0
        watch.fast_crashes = watch.fast_crashes + 1 if up_for < self.fast_crash else 0
        self.say(
            f"{child.name} exited with {describe_exit(child.process.returncode)} after {up_for:.1f} s; "
            "the rest keeps running."
        )
        if watch.fast_crashes >= self.max_fast_crashes:
            self.given_up.append(child)
            self.say(
                f"giving up on {child.name}: it crashed {watch.fast_crashes} times in a row, each within "
                f"{self.fast_crash:.0f} s of its start. Look at its output above, fix the cause, then stop "
                "labkit (Ctrl-C) and start it again. Everything else keeps running."
            )
            return
        self.say(f"restarting {child.name} in {watch.delay:g} s")
        watch.restart_at = now + watch.delay
        watch.delay = min(watch.delay * 2, self.max_delay)


def supervised_pid(processor_name: str) -> int | None:
    """The pid behind a processor named ``processor-<this host>-<pid>``, if a ``labkit up``/``lab`` here supervises it; else None."""
    import socket

    import psutil

    prefix = f"processor-{socket.gethostname()}-"
    if not processor_name.startswith(prefix) or not processor_name[len(prefix) :].isdigit():
        return None
    pid = int(processor_name[len(prefix) :])
    try:
        parent = psutil.Process(pid).parent()
        command = parent.cmdline() if parent else []
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    supervised = any(part.endswith("labkit") for part in command) and bool({"up", "lab"} & set(command))
    return pid if supervised else None
