"""A stack's child processes: output forwarded, readiness probed, restarted with backoff when they die.

The restarts are what Compose's ``restart: unless-stopped`` does. Finding a ``labkit processor``
on this machine, supervised here or not, is :mod:`labkit.ops.local_processes`' work.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .._logging import ServiceLogFile
from .._process import describe_exit, die_with_parent, stop_process
from ..errors import LabkitError


class Child:
    """A restartable child process: output prefixed and forwarded (and to ``log``), its readiness probed.

    Ready means ``ready_file`` exists (the child writes it: a processor once the group gave it
    partitions) or ``ready_url`` answers 200 (a web server), never a line in its output: a log
    level or a reworded message must not break start-up.
    """

    def __init__(
        self,
        name: str,
        command: list[str],
        env: dict[str, str],
        ready_file: Path | None = None,
        ready_url: str | None = None,
        echo: bool = True,
        log: ServiceLogFile | None = None,
        task: str | None = None,
        pid_file: Path | None = None,
        hold_file: Path | None = None,
    ):
        """Start command at once, as the child called name.

        ``pid_file``: written with the pid at every start; ``hold_file``: while it exists, the child is
        down on purpose (a Kafka node a lesson stopped) and no supervisor restarts it.
        """
        self.name, self.task = name, task  # task: the one a processor runs (None: not a processor)
        self.pid_file, self.hold_file = pid_file, hold_file
        self.command, self.env = command, {**os.environ, **env}
        self.ready_file, self.ready_url = ready_file, ready_url
        self.echo, self.log = echo, log
        self.tail: collections.deque[str] = collections.deque(maxlen=50)
        self.start()

    def start(self) -> None:
        """Start the command (again, after it died), forwarding its output from a thread."""
        if self.ready_file is not None:
            self.ready_file.unlink(missing_ok=True)
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        if self.pid_file is not None:
            self.pid_file.write_text(f"{self.process.pid}\n")
        threading.Thread(
            target=self._pump, args=(self.process.stdout,), name=f"{self.name}-output", daemon=True
        ).start()

    @property
    def held(self) -> bool:
        """True while the child is stopped on purpose (its hold file exists): not to be restarted."""
        return self.hold_file is not None and self.hold_file.exists()

    def _pump(self, output) -> None:
        for line in output:
            line = line.rstrip()
            self.tail.append(line)
            if self.log is not None:
                self.log.write(line)
            if self.echo:
                print(f"{self.name:>9} | {line}", flush=True)

    def is_ready(self) -> bool:
        """Whether the child says it is ready (its ready file exists, or its URL answers 200)."""
        if self.ready_file is not None and self.ready_file.exists():
            return True
        if self.ready_url is not None:
            import httpx

            try:
                return httpx.get(self.ready_url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False
        return False

    def wait_ready(self, timeout: float) -> None:
        """Block until :meth:`is_ready`; a clear error if the child exits first or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        while not self.is_ready():
            if self.process.poll() is not None:
                raise LabkitError(
                    f"{self.name} exited with code {self.process.returncode} before it was ready. "
                    f"Its last output: {' / '.join(list(self.tail)[-3:]) or 'none'}"
                )
            if time.monotonic() > deadline:
                raise LabkitError(f"{self.name} was not ready within {timeout:.0f} s; see its output above.")
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> None:
        stop_process(self.process, timeout)


@dataclass
class _Watch:
    delay: float  # the pause before the next restart
    fast_crashes: int = 0  # crashes in a row, each soon after its start
    restart_at: float | None = None  # when a dead child is due to start again


class Supervisor:
    """Restart dead children after 1, 2, 4 … 30 s; give up on one that keeps crashing as it starts.

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
        self._held: set[Child] = set()  # children seen stopped on purpose

    def check(self, now: float | None = None) -> None:
        """Notice children that died, and start again those whose pause is over."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child in self.given_up:
                continue
            if child.held:  # stopped on purpose (a lesson's `labkit cluster stop 2`): not a crash
                self._held.add(child)
                self._watches.pop(child, None)
                continue
            if child in self._held:  # let go again: start it now if it is down
                self._held.discard(child)
                if child.process.poll() is not None:
                    child.start()
                    self.say(f"started {child.name} again (pid {child.process.pid})")
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
