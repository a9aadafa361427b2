"""A stack's child processes: output forwarded, readiness probed, restarted with backoff when they die.

The restarts are what Compose's ``restart: unless-stopped`` does. A ``labkit processor`` running on
this machine, supervised here or not, is found by the :class:`~labkit.config.Settings` it runs
with (:func:`local_processors`).
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from .._logging import ServiceLogFile
from .._process import describe_exit, die_with_parent, stop_process
from ..config import Settings
from ..errors import LabkitError


class Child:
    """One child process: its output prefixed and forwarded (and written to ``log``), its readiness probed; restartable.

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


def supervised_pid(processor_name: str) -> int | None:
    """The pid behind a processor named ``<anything>-<this host>-<pid>`` (``processor-host-123``), if supervised here.

    Supervised: its parent is a ``labkit up`` or ``labkit lab`` on this machine; else None.
    """
    import socket

    import psutil

    found = re.search(rf"(?:^|-){re.escape(socket.gethostname())}-(\d+)$", processor_name)
    if found is None:
        return None
    pid = int(found.group(1))
    try:
        parent = psutil.Process(pid).parent()
        command = parent.cmdline() if parent else []
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    supervised = any(part.endswith("labkit") for part in command) and bool({"up", "lab"} & set(command))
    return pid if supervised else None


def _flag(command: Sequence[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in a command line (the last one given), else None."""
    value = None
    for i, word in enumerate(command):
        if word == name and i + 1 < len(command):
            value = command[i + 1]
        elif word.startswith(name + "="):
            value = word.split("=", 1)[1]
    return value


class _SettingsGiven(Settings):
    """Settings from the values given only: another process's, never this process's own ``LABKIT_*`` variables."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def child_settings(env: Mapping[str, str], command: Sequence[str]) -> Settings:
    """The :class:`Settings` a ``labkit`` command runs with, read as it reads them.

    Its ``LABKIT_*`` variables, with its ``--setting`` flags on top. Raises pydantic's
    ``ValidationError`` where labkit would refuse them at start.
    """
    prefix = "LABKIT_"
    values: dict[str, Any] = {
        name[len(prefix) :].lower(): value for name, value in env.items() if name.upper().startswith(prefix)
    }
    for name in Settings.model_fields:
        flag = _flag(command, "--" + name.replace("_", "-"))
        if flag is not None:
            values[name] = flag
    return _SettingsGiven(**{name: value for name, value in values.items() if name in Settings.model_fields})


def local_processors(settings: Settings) -> list[int]:
    """Pids of ``labkit processor`` processes on this machine that consume ``settings``' group on its cluster.

    For when the broker does not list a group's members (the embedded broker answers
    DescribeGroups with none): a running processor is then found where it runs, by the settings
    it runs with (:func:`child_settings`: its ``LABKIT_*`` variables, as a stack gives them, and
    its flags, which win over them): its consumer group ``<group_prefix>-<task>`` and its cluster.
    """
    import psutil

    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        command = process.info["cmdline"] or []
        if "labkit" not in command or "processor" not in command[command.index("labkit") :]:
            continue
        try:
            child = child_settings(process.environ(), command)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        except ValidationError:
            continue  # settings labkit refuses: that processor stopped at its start
        if child.group_id == settings.group_id and child.bootstrap_servers == settings.bootstrap_servers:
            found.append(process.info["pid"])
    return found
