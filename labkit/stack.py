"""Run the whole pipeline on one machine: broker, topics, processor, web app and (optionally) JupyterLab, as child processes.

``labkit up`` and ``labkit lab`` use :class:`Stack`; notebooks use :func:`ensure_pipeline`,
which reuses whatever is already running (e.g. what ``labkit lab`` started) and starts only
what is missing. Each part is a separate process, as in production, and each says it is ready
(a processor writes a ready file, a web server answers HTTP) before the next starts. While it
runs, a part that dies is restarted and the others keep working (:mod:`labkit.supervisor`). Stopping the stack (Ctrl-C,
SIGTERM, ``stop()``, or the embedded broker dying) stops every process it started, newest first;
on Linux the children are also told to exit if this process dies without cleaning up.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ._process import die_with_parent, on_stop_signal, stop_process
from .admin import create_topics, group_members, wait_for_broker
from .broker import EmbeddedBroker, port_is_open
from .config import Settings, load_settings
from .errors import BrokerUnavailable, LabkitError
from .supervisor import Supervisor, describe_exit

log = logging.getLogger(__name__)


class Child:
    """One child process: its output prefixed and forwarded, its readiness probed; it can start again.

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
    ):
        self.name = name
        self.command, self.env = command, {**os.environ, **env}
        self.ready_file, self.ready_url = ready_file, ready_url
        self.echo = echo
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
        threading.Thread(
            target=self._pump, args=(self.process.stdout,), name=f"{self.name}-output", daemon=True
        ).start()

    def _pump(self, output) -> None:
        for line in output:
            line = line.rstrip()
            self.tail.append(line)
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


def _labkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "labkit", *args]


class Stack:
    """The parts of the pipeline this process started (and will stop)."""

    def __init__(
        self,
        settings: Settings,
        web: bool = True,
        jupyter: bool = False,
        processors: int = 1,
        echo: bool = True,
        notebook_dir: Path | None = None,
    ):
        self.settings = settings
        self.want_web, self.want_jupyter, self.processors = web, jupyter, processors
        self.echo = echo
        self.notebook_dir = notebook_dir or Path.cwd() / "notebooks"
        self.broker: EmbeddedBroker | None = None
        self.children: list[Child] = []
        self._ready_tmp: tempfile.TemporaryDirectory | None = None

    def _say(self, message: str) -> None:
        if self.echo:
            print(f"{'labkit':>9} | {message}", flush=True)
        else:
            log.info(message)

    def _start_broker_if_needed(self) -> None:
        try:
            wait_for_broker(self.settings, timeout=1.5)
            self._say(f"using the Kafka broker at {self.settings.bootstrap_servers}")
            return
        except BrokerUnavailable:
            if self.settings.names_its_broker:
                raise  # the user named a broker: never start a different one in its place
        self.broker = EmbeddedBroker(self.settings.broker_port, self.settings.broker_host).start()
        self._say(f"embedded broker (Tansu, in-memory) ready on {self.broker.bootstrap_servers}")

    def _spawn(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        ready_file: Path | None = None,
        ready_url: str | None = None,
    ) -> Child:
        child = Child(name, command, {**self.settings.to_env(), **(env or {})}, ready_file, ready_url, self.echo)
        self.children.append(child)
        return child

    def start(self, model_timeout: float = 600) -> "Stack":
        """Start what is wanted and not already running; returns when all of it is ready."""
        try:
            self._start_broker_if_needed()
            created = create_topics(self.settings)
            self._say("topics: " + ", ".join(f"{t} ({state})" for t, state in created.items()))
            if self.processors:
                # Several processors on one machine share its cores instead of fighting over them.
                threads = self.settings.inference_threads or (
                    max(1, (os.cpu_count() or 1) // self.processors) if self.processors > 1 else 0
                )
                env = {"LABKIT_INFERENCE_THREADS": str(threads)}
                # Start them together (model loading overlaps), then wait for each to join the group.
                starting = []
                for i in range(self.processors):
                    name = "processor" if self.processors == 1 else f"processor{i + 1}"
                    ready = self._ready_dir() / f"{name}.ready"
                    starting.append(self._spawn(name, _labkit("processor", "--ready-file", str(ready)), env, ready))
                for child in starting:
                    child.wait_ready(model_timeout)
            if self.want_web:
                if port_is_open("127.0.0.1", self.settings.web_port):
                    raise LabkitError(
                        f"Port {self.settings.web_port} is busy; choose another with --web-port or LABKIT_WEB_PORT."
                    )
                # Ready = /healthz answers (the app logs "ready" before uvicorn has even bound its port).
                web = self._spawn("web", _labkit("web"), ready_url=f"http://127.0.0.1:{self.settings.web_port}/healthz")
                web.wait_ready(90)
                host = "localhost" if self.settings.web_host in ("127.0.0.1", "0.0.0.0") else self.settings.web_host
                self._say(f"web app: http://{host}:{self.settings.web_port}")
            if self.want_jupyter:
                command = [
                    sys.executable,
                    "-m",
                    "jupyterlab",
                    f"--port={self.settings.jupyter_port}",
                    f"--ServerApp.root_dir={self.notebook_dir}",
                    f"--ip={self.settings.web_host}",
                    "--LabApp.default_url=/lab/tree/00_quickstart.ipynb",  # the lab opens on its first lesson
                    "--LabApp.news_url=None",  # and without JupyterLab's "get news?" prompt
                ]
                if hasattr(os, "geteuid") and os.geteuid() == 0:
                    command.append("--allow-root")  # containers and CI machines often run as root
                # Jupyter Server's version endpoint answers without a token once it serves.
                jupyter = self._spawn(
                    "jupyter", command, ready_url=f"http://127.0.0.1:{self.settings.jupyter_port}/api"
                )
                jupyter.wait_ready(120)
        except BaseException:
            self.stop()
            raise
        return self

    def _ready_dir(self) -> Path:
        """A private folder for the children's ready files, removed with the stack."""
        if self._ready_tmp is None:
            self._ready_tmp = tempfile.TemporaryDirectory(prefix="labkit-ready-")
        return Path(self._ready_tmp.name)

    def stop(self) -> None:
        """Stop everything this stack started, newest first."""
        for child in reversed(self.children):
            child.stop()
        self.children.clear()
        if self.broker:
            self.broker.stop()
            self.broker = None
        if self._ready_tmp is not None:
            self._ready_tmp.cleanup()
            self._ready_tmp = None

    def run_until_signal(self) -> int:
        """Run until Ctrl-C / SIGTERM (or our broker dies), restarting children that die; returns an exit code."""
        stop = threading.Event()
        on_stop_signal(stop.set)
        supervisor = Supervisor(self.children, self._say)
        self._say("ready. Press Ctrl-C to stop everything.")
        code = 0
        while not stop.wait(0.5):
            broker = self.broker.process if self.broker else None  # started with the stack
            if broker is not None and broker.poll() is not None:
                # In-memory: a new broker would be an empty cluster, and producers that outlived the old one fail.
                self._say(
                    f"the embedded broker exited with {describe_exit(broker.returncode)}; "
                    "it held every topic in memory, so they are gone: stopping everything. Start labkit again "
                    "for a new, empty broker."
                )
                code = 1
                break
            supervisor.check()
        self._say("stopping…")
        self.stop()
        self._say("stopped.")
        return 1 if code or supervisor.given_up else 0

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ensure_pipeline(
    settings: Settings | None = None, web: bool = False, echo: bool = False, processor: bool = True
) -> Stack:
    """A running broker, topics, (unless ``processor=False``) a processor and (with ``web``) the web app: reuse what is up, start what is missing.

    Notebooks call this first. Call ``.stop()`` on the result when done: it stops only what it
    started, never a broker or processor someone else is running.
    """
    settings = settings or load_settings()
    stack = Stack(settings, web=web, echo=echo, processors=1 if processor else 0)
    if web and port_is_open("127.0.0.1", settings.web_port):
        stack.want_web = False  # a web app already serves there (e.g. the one `labkit lab` started): use it
    try:
        wait_for_broker(settings, timeout=1.5)
        if processor and group_members(settings):
            stack.processors = 0
    except BrokerUnavailable:
        pass
    return stack.start()
