"""Run the whole pipeline on one machine, as child processes.

The parts: broker (Tansu or Apache Kafka), topics, processors, web app and (optionally) JupyterLab.

``labkit up`` and ``labkit lab`` use :class:`Stack`, with processors for every enabled task
(``LABKIT_TASKS``: CLIP and OCR, each task its own consumer group); notebooks use
:func:`ensure_pipeline`, which reuses whatever is already running (e.g. what ``labkit lab``
started) and starts only what is missing. Each part is a separate process, as in production, and
each says it is ready (a processor writes a ready file, a web server answers HTTP) before the
next starts. Its output is shown after its name (``clip``, ``clip2``, ``ocr``, ``web``…) and
kept, time-stamped, in a capped file of that name (``Settings.service_log_dir``, where notebooks
read it). While it runs, a part that dies is restarted and the others keep
working (:mod:`labkit.ops.supervisor`). Stopping the stack (Ctrl-C,
SIGTERM, ``stop()``, or the in-memory Tansu broker dying) stops every process it started, newest first;
on Linux the children are also told to exit if this process dies without cleaning up.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from .._logging import ServiceLogFile
from .._net import port_is_open
from .._process import on_stop_signal
from ..config import Settings, load_settings
from ..errors import BrokerUnavailable, LabkitError
from ..kafka.admin import create_topics, group_assignments, wait_for_broker
from ..kafka.engines import Broker, start_engine
from ..tasks import check_tasks
from .jupyter import jupyter_command, jupyter_env, write_config
from .local_processes import local_processors
from .supervisor import Child, Supervisor

__all__ = ["Child", "Stack", "ensure_pipeline", "processor_name", "processors_per_task"]

log = logging.getLogger(__name__)


def _labkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "labkit", *args]


def processor_name(task: str, index: int) -> str:
    """What a stack calls its ``index``-th (from 0) processor of ``task``: ``clip``, ``clip2``…, ``ocr``.

    The name is also its log file's.
    """
    return task if index == 0 else f"{task}{index + 1}"


def processors_per_task(settings: Settings, asked: Mapping[str, int]) -> dict[str, int]:
    """``labkit up --processors``: each enabled task's count, ``asked`` where it names one, else 1."""
    enabled = settings.enabled_tasks
    if extra := [task for task in asked if task not in enabled]:
        raise LabkitError(
            f"--processors names {', '.join(extra)}, which --tasks/LABKIT_TASKS ({settings.tasks}) does not run: "
            f"add it there (--tasks {','.join((*enabled, *extra))}) or write --processors "
            f"{','.join(f'{task}=1' for task in enabled)}."
        )
    return {task: asked.get(task, 1) for task in enabled}


class Stack:
    """The parts of the pipeline this process started (and will stop).

    ``processors``: how many processors of each task, ``{"clip": 2, "ocr": 1}``; a number ``n``
    means ``n`` of ``settings.task`` (CLIP unless the settings name another task). Each task's
    processors share its consumer group (``<group_prefix>-<task>``), and every task reads every
    upload.
    """

    def __init__(
        self,
        settings: Settings,
        web: bool = True,
        jupyter: bool = False,
        processors: int | Mapping[str, int] = 1,
        echo: bool = True,
        notebook_dir: Path | None = None,
        sink: bool = False,
        fresh: bool = False,
    ):
        """Plan the stack for ``settings``; nothing starts until :meth:`start`.

        ``sink``: also run the history's sink (``labkit sink``; ``labkit up``/``lab`` do unless
        ``--no-sink``); ``fresh``: wipe the Apache Kafka cluster's data before starting it (``--fresh``).
        """
        check_tasks(settings)  # LABKIT_TASKS naming no task is an error now, before any part starts
        self.settings = settings
        self.fresh = fresh
        self.want_sink = sink
        self.want_web, self.want_jupyter = web, jupyter
        self.processors = dict(processors) if isinstance(processors, Mapping) else {settings.task: processors}
        self.echo = echo
        self.notebook_dir = notebook_dir or Path.cwd() / "notebooks"
        self.broker: Broker | None = None
        self.children: list[Child] = []
        self._ready_tmp: tempfile.TemporaryDirectory | None = None
        self.log_dir: Path | None = settings.service_log_dir
        self._logs: dict[str, ServiceLogFile] = {}

    def _say(self, message: str) -> None:
        if self.echo:
            print(f"{'labkit':>9} | {message}", flush=True)
        else:
            log.info(message)
        if (own := self._log("labkit")) is not None:
            own.write(message)

    def _log(self, name: str) -> ServiceLogFile | None:
        """The log file of the part called ``name`` (None once the folder proved unwritable: said once)."""
        if self.log_dir is not None and name not in self._logs:
            try:
                self._logs[name] = ServiceLogFile(self.log_dir, name)
            except OSError as exc:
                folder, self.log_dir = self.log_dir, None
                self._say(f"no log files in {folder} ({exc}); set --log-dir or LABKIT_LOG_DIR to a writable folder")
        return self._logs.get(name)

    def _start_broker_if_needed(self) -> None:
        try:
            wait_for_broker(self.settings, timeout=1.5)
            self._say(
                f"using the Kafka broker at {self.settings.bootstrap_servers}"
                + (" (--fresh ignored: labkit did not start it)" if self.fresh else "")
            )
            return
        except BrokerUnavailable:
            if self.settings.names_its_broker:
                raise  # the user named a broker: never start a different one in its place
        self.broker = start_engine(self.settings, self.log_dir, self.fresh, self._say)
        self._say(f"{self.broker.description} ready on {self.broker.bootstrap_servers}")

    def _spawn(
        self,
        name: str,
        command: list[str],
        env: dict[str, str] | None = None,
        ready_file: Path | None = None,
        ready_url: str | None = None,
        task: str | None = None,
        settings: Settings | None = None,
    ) -> Child:
        output = self._log(name)
        logs = {"LABKIT_LOG_DIR": str(self.log_dir)} if self.log_dir is not None else {}  # for JupyterLab's kernels
        env = {**(settings or self.settings).to_env(), **logs, **(env or {})}  # settings: the child's (a processor's)
        child = Child(name, command, env, ready_file, ready_url, self.echo, output, task)
        self.children.append(child)
        return child

    def _start_processors(self, timeout: float) -> None:
        """Start every wanted processor at once (model loading overlaps), then wait for each to join its group."""
        wanted = {task: count for task, count in self.processors.items() if count > 0}
        total = sum(wanted.values())
        # Several processors on one machine share its cores instead of fighting over them: every task's count,
        # since each upload goes to every task at once (ONNX Runtime's spinning threads suffer most when
        # oversubscribed).
        threads = self.settings.inference_threads or (max(1, (os.cpu_count() or 1) // total) if total > 1 else 0)
        starting = []
        for task, count in wanted.items():
            group = self.settings.for_task(task).group_id
            self._say(f"{task}: {count} processor(s) in consumer group {group}")
            for i in range(count):
                name = processor_name(task, i)
                ready = self._ready_dir() / f"{name}.ready"
                command = _labkit("processor", "--ready-file", str(ready), "--stats-file", str(self.stats_file(name)))
                own = self.settings.model_copy(update={"task": task, "inference_threads": threads})
                starting.append(self._spawn(name, command, ready_file=ready, task=task, settings=own))
        for child in starting:
            child.wait_ready(timeout)

    def start(self, model_timeout: float = 600) -> "Stack":
        """Start what is wanted and not already running; returns when all of it is ready."""
        try:
            self._start_broker_if_needed()
            created = create_topics(self.settings)
            self._say("topics: " + ", ".join(f"{t} ({state})" for t, state in created.items()))
            sink = None
            if self.want_sink:  # starts beside the processors; its group joins while their models load
                ready = self._ready_dir() / "sink.ready"
                command = _labkit("sink", "--ready-file", str(ready), "--stats-file", str(self.stats_file("sink")))
                sink = self._spawn("sink", command, ready_file=ready)
            self._start_processors(model_timeout)
            if sink is not None:
                sink.wait_ready(120)
                self._say(f"sink: group {self.settings.group_prefix}-sink keeps the history in {self._history_place()}")
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
                config = write_config(self._ready_dir() / "jupyter-config")
                command = jupyter_command(self.settings, self.notebook_dir)
                # Jupyter Server's version endpoint answers without a token once it serves.
                jupyter = self._spawn(
                    "jupyter",
                    command,
                    env=jupyter_env(config),
                    ready_url=f"http://127.0.0.1:{self.settings.jupyter_port}/api",
                )
                jupyter.wait_ready(120)
        except BaseException:
            self.stop()
            raise
        return self

    def _history_place(self) -> str:
        if self.settings.database_url is None:
            return f"an embedded PostgreSQL in {self.settings.history_dir / 'postgres'}"
        from ..history.database import redacted

        return redacted(self.settings.database_url.get_secret_value())

    def stats_file(self, name: str) -> Path:
        """Where the child called ``name`` keeps its counts: a processor's, or the sink's (``"sink"``)."""
        return self._ready_dir() / f"{name}.stats.json"

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
        for own in self._logs.values():
            own.close()
        self._logs.clear()

    def run_until_signal(self) -> int:
        """Run until Ctrl-C / SIGTERM (or our broker dies), restarting children that die; returns an exit code."""
        stop = threading.Event()
        on_stop_signal(stop.set)
        # Apache Kafka's nodes are supervised like the rest (restarted when they die, unless stopped on purpose).
        nodes = self.broker.supervised_children() if self.broker else []
        supervisor = Supervisor([*nodes, *self.children], self._say)
        self._say("ready. Press Ctrl-C to stop everything.")
        code = 0
        while not stop.wait(0.5):
            if self.broker is not None and (failure := self.broker.failure()):
                # Tansu is in memory: a new broker would be an empty cluster, and producers that outlived it fail.
                self._say(f"{failure}: stopping everything. Start labkit again for a new broker.")
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
    settings: Settings | None = None,
    web: bool = False,
    echo: bool = False,
    processor: bool = True,
    tasks: Sequence[str] | None = None,
) -> Stack:
    """A running pipeline: reuse what is up, start what is missing.

    The pipeline: a broker, topics, (unless ``processor=False``) a processor per task and (with
    ``web``) the web app.

    ``tasks``: the tasks that need a processor. By default ``settings.task`` (CLIP), and with
    ``web`` every enabled task (``LABKIT_TASKS``), since the web app waits for each one's
    result. A task gets none when a ``labkit processor`` of its group runs on this machine, or
    its consumer group already has a member (where the broker lists them).
    Notebooks call this first. Call ``.stop()`` on the result when done: it stops only what it
    started, never a broker or processor someone else is running.
    """
    settings = settings or load_settings()
    if tasks is None:
        tasks = settings.enabled_tasks if web else (settings.task,)
    wanted = {task: int(processor) for task in tasks}
    stack = Stack(settings, web=web, echo=echo, processors=wanted)
    if web and port_is_open("127.0.0.1", settings.web_port):
        stack.want_web = False  # a web app already serves there (e.g. the one `labkit lab` started): use it
    try:
        wait_for_broker(settings, timeout=1.5)
        for task in [task for task, count in wanted.items() if count]:
            group = settings.for_task(task)
            # A processor of this group on this machine (say, one `labkit lab` supervises) counts even
            # while the broker lists no members: a second one here would only force a rebalance.
            if local_processors(group) or group_assignments(group):
                stack.processors[task] = 0
    except BrokerUnavailable:
        pass
    return stack.start()
