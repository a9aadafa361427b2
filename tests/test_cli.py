"""The labkit command as a user runs it: one-line errors, topic admin output, `labkit up` start/stop and restarts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import psutil
import pytest
from test_resilience import _upload, _wait_done

from labkit._net import free_port, free_ports
from labkit._process import die_with_parent
from labkit.config import Settings
from labkit.kafka.admin import read_topic
from labkit.ops.local_processes import local_processors
from labkit.ops.stack import ensure_pipeline
from labkit.records.wire import ScoreResult
from labkit.samples import sample_photos


def labkit(*args, env=None, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "labkit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _stack_env(**extra: str) -> dict[str, str]:
    """The environment of a `labkit up` / `labkit lab` of the test's own: test model, free ports, own broker."""
    env = {
        **os.environ,
        "LABKIT_MODEL": "test-tiny",
        "LABKIT_WEB_PORT": str(free_port()),
        "LABKIT_BROKER_PORT": str(free_ports(int(os.environ.get("LABKIT_BROKERS", "1")))),  # node N: this + N - 1
        **extra,
    }
    env.pop("LABKIT_BOOTSTRAP", None)
    return env


class Running:
    """`labkit up` (or `lab`) started as a user would, its output collected by a thread as it comes.

    Nothing here waits without a deadline: the test thread never reads the pipe itself (a thread
    does, line by line, into ``lines``), ``wait_for`` gives up after ``timeout`` seconds and
    ``stop`` after ``timeout`` more, each failing with the output so far. A child that will not
    stop is killed with everything it started, and it gets SIGTERM if the test process dies
    first (pytest-timeout ends a hung run that way), so nothing outlives the test run.
    """

    def __init__(self, *args: str, env: dict[str, str]):
        self.command = " ".join(["labkit", *args])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "labkit", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, name=f"{self.command}-output", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def _fail(self, why: str) -> None:
        pytest.fail(f"{self.command}: {why}; its output so far:\n{self.output[-8000:]}", pytrace=False)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 120) -> re.Match:
        """The ``count``-th match of the regular expression ``pattern`` in the output, once it is there."""
        deadline = time.monotonic() + timeout
        while len(found := [m for line in list(self.lines) if (m := re.search(pattern, line))]) < count:
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the reader take in the last lines
                self._fail(f"exited with code {self.process.returncode} before {count}× {pattern!r}")
            if time.monotonic() > deadline:
                self._fail(f"no {count}× {pattern!r} within {timeout:.0f} s")
            time.sleep(0.05)
        return found[count - 1]

    def children(self, recursive: bool = False) -> list[psutil.Process]:
        return psutil.Process(self.process.pid).children(recursive=recursive)

    def kill(self) -> None:
        """SIGKILL the command and everything it started (a child of its may be what hangs)."""
        try:
            family = [*self.children(recursive=True), psutil.Process(self.process.pid)]
        except psutil.NoSuchProcess:
            family = []
        for process in family:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=10)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        """Ctrl-C (or ``sig``); the exit code once it has stopped. Fails (after killing it) if it does not stop."""
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self._fail(f"did not stop within {timeout:.0f} s of {signal.Signals(sig).name}; killed it")
        self._reader.join(5)
        return code


def test_unreachable_broker_is_one_line_within_ten_seconds():
    address = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = labkit("topics", "list", "--bootstrap", address)
    assert time.monotonic() - started < 12
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "labkit broker" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_is_one_line():
    result = labkit("config", "--web-port", "eighty")
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "web_port" in result.stderr


def _kafka_flags(settings) -> list[str]:
    """The flags that point a command at this test's broker and topics."""
    return [
        *("--bootstrap", settings.bootstrap_servers, "--requests-topic", settings.requests_topic),
        *("--results-topic", settings.results_topic, "--dead-letter-topic", settings.dead_letter_topic),
    ]


def test_topics_create_list_describe(settings):
    flags = _kafka_flags(settings)
    created = labkit("topics", "create", *flags)
    assert created.returncode == 0 and f"{settings.requests_topic}: created" in created.stdout
    again = labkit("topics", "create", *flags)
    assert f"{settings.requests_topic}: exists" in again.stdout
    listed = labkit("topics", "list", *flags)
    assert f"* {settings.results_topic}  (3 partitions)" in listed.stdout
    described = labkit("topics", "describe", *flags, "--group-prefix", "lab", "--group", "mine")
    rows = [line.split() for line in described.stdout.splitlines() if line.startswith(settings.requests_topic)]
    assert [row[1] for row in rows] == ["0", "1", "2"]
    # Each task's consumer group on the requests topic (and --group's), per partition and in all.
    groups = [line.split()[:3] for line in described.stdout.splitlines() if line.startswith(("lab-", "mine "))]
    assert groups == [
        [group, task, p]
        for group, task in [("lab-clip", "clip"), ("lab-ocr", "ocr"), ("mine", "-")]
        for p in ["0", "1", "2", "all"]
    ], described.stdout


def _results_by_task(settings: Settings, request_id: str) -> set[str]:
    """The tasks whose result for ``request_id`` is in the results topic (read outside any group)."""
    records = read_topic(settings, settings.results_topic, idle_s=0.5)
    return {ScoreResult.from_json(r.value()).task for r in records if r.key() == request_id.encode()}


def test_up_runs_a_processor_per_task_and_ctrl_c_stops_everything(photos):
    env = _stack_env(LABKIT_LOG_LEVEL="WARNING")  # readiness must not depend on INFO log lines
    web = f"http://127.0.0.1:{env['LABKIT_WEB_PORT']}"
    up = Running("up", env=env)
    try:
        up.wait_for("Press Ctrl-C")
        # One processor per enabled task (default clip and ocr), each named after its task everywhere.
        assert re.search(r"labkit \| clip: 1 processor\(s\) in consumer group labkit-clip", up.output), up.output
        assert re.search(r"labkit \| ocr: 1 processor\(s\) in consumer group labkit-ocr", up.output), up.output
        children = up.children(recursive=True)
        assert len(children) >= 4, children  # broker, clip, ocr, web
        settings = Settings(model="test-tiny", broker_port=env["LABKIT_BROKER_PORT"], web_port=env["LABKIT_WEB_PORT"])
        tasks = {c.environ().get("LABKIT_TASK"): c.pid for c in children if "processor" in c.cmdline()}
        assert set(tasks) == {"clip", "ocr"}, tasks
        logs = settings.service_log_dir
        assert {"clip.log", "ocr.log", "web.log"} <= {path.name for path in logs.iterdir()}, list(logs.iterdir())
        request_id = _upload(web, photos[0].read_bytes(), "cat.jpg").json()["request_id"]
        deadline = time.monotonic() + 60
        while (done := _results_by_task(settings, request_id)) != {"clip", "ocr"}:  # each task answers it
            assert time.monotonic() < deadline, (done, up.output[-3000:])
        # A notebook's ensure_pipeline finds each task's processor where it runs (the embedded broker
        # lists no group members) and starts none of its own.
        assert local_processors(settings) == [tasks["clip"]]
        assert local_processors(settings.for_task("ocr")) == [tasks["ocr"]]
        assert local_processors(settings.model_copy(update={"group_prefix": "someone-else"})) == []
        notebook = ensure_pipeline(settings, web=True)  # with the web app: every task it waits for
        try:
            assert notebook.processors == {"clip": 0, "ocr": 0} and not notebook.want_web and not notebook.children
        finally:
            notebook.stop()
        # A task whose group has nobody gets a processor of its own, in that group, named after it.
        elsewhere = settings.model_copy(update={"group_prefix": "notebook"})
        notebook = ensure_pipeline(elsewhere, tasks=["ocr"])
        try:
            assert notebook.processors == {"ocr": 1}
            assert [(c.name, c.task) for c in notebook.children] == [("ocr", "ocr")]
            assert local_processors(elsewhere.for_task("ocr")) == [notebook.children[0].process.pid]
        finally:
            notebook.stop()
    finally:
        code = up.stop()
    assert code == 0, up.output
    assert "stopped." in up.output
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {alive}"


def test_processors_flag_names_tasks_that_run():
    result = labkit("up", "--processors", "ocr=2", env={"LABKIT_TASKS": "clip"})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "--tasks clip,ocr" in result.stderr and "--processors clip=1" in result.stderr
    result = labkit("lab", "--processors", "two")
    assert result.returncode == 2 and "clip=2,ocr=1" in result.stderr


def test_up_restarts_a_processor_killed_with_sigkill_and_the_rest_keeps_serving():
    env = _stack_env()
    web = f"http://127.0.0.1:{env['LABKIT_WEB_PORT']}"
    up = Running("up", "--processors", "2", env={**env, "LABKIT_TASKS": "clip"})
    try:
        up.wait_for("Press Ctrl-C")
        web_process = next(c for c in up.children() if "web" in c.cmdline())
        victim = next(c for c in up.children() if "processor" in c.cmdline())
        photo = sample_photos()["kitten"].read_bytes()
        ids = []
        for i in range(30):  # uploads keep coming while one processor dies
            response = _upload(web, photo, f"kitten-{i}.jpg")
            assert response.status_code == 202, response.text
            ids.append(response.json()["request_id"])
            if i == 10:
                victim.kill()
            time.sleep(0.1)
        name = up.wait_for(r"\| (clip2?) exited with code -9 \(SIGKILL\)", timeout=10)[1]
        up.wait_for(rf"\| restarting {name} in 1 s")
        pid = int(up.wait_for(rf"\| restarted {name} \(pid (\d+)\)")[1])
        for request_id in ids:
            assert _wait_done(web, request_id, timeout=90)["status"] == "done", up.output
        up.wait_for(rf"{name} \| processor ready: \S+-{pid}, partitions", timeout=60)  # the new one joined the group
        processors = {c.pid for c in up.children() if "processor" in c.cmdline()}
        assert pid in processors and victim.pid not in processors and len(processors) == 2, up.output
        assert httpx.get(f"{web}/healthz").status_code == 200 and web_process.is_running()
        assert "web exited" not in up.output
        children = up.children(recursive=True)
    finally:
        code = up.stop()
    assert code == 0 and "stopped." in up.output, up.output
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {alive}"


def test_send_prints_labels_of_each_image(settings, start_processor, photos):
    start_processor()
    result = labkit("send", str(photos[0]), str(photos[1]), *_kafka_flags(settings))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(str(photos[0])) and "%" in lines[0]


def test_lab_starts_jupyterlab_and_stops_it(tmp_path):
    (tmp_path / "notebooks").mkdir()
    env = _stack_env(LABKIT_JUPYTER_PORT=str(free_port()), BROWSER="true", JUPYTER_RUNTIME_DIR=str(tmp_path))
    lab = Running("lab", "--no-web", "--notebook-dir", str(tmp_path / "notebooks"), env=env)
    try:
        lab.wait_for("Press Ctrl-C", timeout=240)
        assert "00_quickstart" in lab.output, lab.output
        children = lab.children(recursive=True)
        assert any("jupyterlab" in " ".join(c.cmdline()) for c in children)
        base = f"http://127.0.0.1:{env['LABKIT_JUPYTER_PORT']}"
        status = httpx.get(f"{base}/lab", follow_redirects=False)
        assert status.status_code in (200, 302, 403)  # JupyterLab answers (login page without the token)
        token = re.search(r"token=([0-9a-f]+)", lab.output).group(1)
        start = httpx.get(f"{base}/?token={token}", follow_redirects=False)
        assert start.headers["location"].startswith("/lab/tree/00_quickstart.ipynb")  # opens on the first lesson
        page = httpx.get(f"{base}/lab/tree/00_quickstart.ipynb?token={token}").text
        assert '"news": {"disabled": true}' in page  # no "get news?" prompt
    finally:
        code = lab.stop(signal.SIGTERM)
    assert code == 0, lab.output
    _, alive = psutil.wait_procs(children, timeout=5)
    assert not alive


def test_config_masks_the_api_token():
    result = subprocess.run(
        [sys.executable, "-m", "labkit", "config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LABKIT_API_TOKEN": "very-secret"},
    )
    assert result.returncode == 0 and "LABKIT_API_TOKEN=**********" in result.stdout
    assert "very-secret" not in result.stdout + result.stderr
