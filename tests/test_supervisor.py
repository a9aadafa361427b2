"""The restart policy of `labkit up` on real child processes: backoff, and giving up on a child that keeps crashing."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from labkit.cli import build_parser
from labkit.config import Settings
from labkit.ops.local_processes import labkit_arguments, local_processors, processor_flags, supervised_pid
from labkit.ops.stack import Child
from labkit.ops.supervisor import Supervisor, describe_exit

#: A stand-in for labkit: as ``labkit up``/``lab`` it starts a ``labkit processor`` (itself again); it waits.
FAKE_LABKIT = """\
import subprocess, sys, time
if sys.argv[1:2] in (["up"], ["lab"]):
    subprocess.run([sys.executable, sys.argv[0], "processor"])
time.sleep(60)
"""


@pytest.fixture
def fake_labkit(tmp_path: Path) -> Path:
    """A stand-in for the ``labkit`` console script: ``…/bin/labkit``, run by the Python of its first line."""
    script = tmp_path / "bin" / "labkit"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\n{FAKE_LABKIT}")
    script.chmod(0o755)
    return script


def _running(child: Child, word: str) -> int:
    """``child``'s pid once its command line (after exec) holds ``word``."""
    deadline = time.monotonic() + 10
    while word not in psutil.Process(child.process.pid).cmdline():
        assert time.monotonic() < deadline, f"{child.name} never ran its command"
    return child.process.pid


def _started(child: Child) -> list[psutil.Process]:
    """The processes ``child`` started (so far)."""
    return psutil.Process(child.process.pid).children()


def test_a_child_that_keeps_crashing_is_given_up_and_the_others_keep_running():
    crasher = Child("crasher", [sys.executable, "-c", "import sys; sys.exit(3)"], {}, echo=False)
    steady = Child("steady", [sys.executable, "-c", "import time; time.sleep(60)"], {}, echo=False)
    said: list[str] = []
    supervisor = Supervisor([crasher, steady], said.append)
    supervisor.first_delay, supervisor.max_delay, supervisor.max_fast_crashes = 0.05, 0.2, 3
    try:
        deadline = time.monotonic() + 30
        while not supervisor.given_up:
            assert time.monotonic() < deadline, said
            supervisor.check()
            time.sleep(0.02)
        assert supervisor.given_up == [crasher]
        assert sum(line.startswith("crasher exited with code 3 after ") for line in said) == 3, said
        assert [line for line in said if line.startswith("restarting crasher in ")] == [
            "restarting crasher in 0.05 s",
            "restarting crasher in 0.1 s",
        ]  # the pause doubles
        assert sum(line.startswith("restarted crasher (pid ") for line in said) == 2
        assert "giving up on crasher" in said[-1] and "output above" in said[-1] and "start it again" in said[-1]
        pid = steady.process.pid
        for _ in range(5):  # given up for good: no more restarts, and the steady child untouched
            supervisor.check()
        assert steady.process.poll() is None and steady.process.pid == pid and len(said) == 8
        assert not any("steady" in line for line in said)
    finally:
        steady.stop(timeout=2)


def test_exit_descriptions_name_the_signal():
    assert describe_exit(3) == "code 3"
    assert describe_exit(-9) == "code -9 (SIGKILL)"
    assert describe_exit(-15) == "code -15 (SIGTERM)"


def test_local_processors_tells_tasks_and_clusters_apart_by_flags_and_variables(fake_labkit: Path):
    here = Settings(bootstrap="127.0.0.1:1", group_prefix="found")
    env = {"LABKIT_GROUP_PREFIX": "found", "LABKIT_TASK": "clip"}
    # As `labkit processor --task ocr --boot=…` in a shell: the flags (abbreviated, as argparse allows) win.
    by_flags = Child("flags", [str(fake_labkit), "processor", "--task", "ocr", "--boot=127.0.0.1:1"], env, echo=False)
    by_env = Child("by-env", [str(fake_labkit), "processor"], {**env, "LABKIT_BOOTSTRAP": "127.0.0.1:1"}, echo=False)
    try:
        ocr, clip = _running(by_flags, "--task"), _running(by_env, "processor")
        assert local_processors(here.for_task("ocr")) == [ocr]
        assert local_processors(here) == [clip]
        assert local_processors(here.model_copy(update={"bootstrap": "127.0.0.1:2"})) == []
        assert local_processors(here.model_copy(update={"group_prefix": "labkit"})) == []
    finally:
        by_flags.stop(timeout=2)
        by_env.stop(timeout=2)


def test_local_processors_finds_python_m_labkit_and_no_other_program_naming_labkit(tmp_path: Path):
    here = Settings(bootstrap="127.0.0.1:3", group_prefix="module", task="ocr")
    package = tmp_path / "labkit"  # `python -m labkit` from this folder runs the stand-in
    package.mkdir()
    (package / "__main__.py").write_text(FAKE_LABKIT)
    env = {**os.environ, "LABKIT_TASK": "clip", "LABKIT_BOOTSTRAP": "127.0.0.1:3"}
    sleep, flags = "import time; time.sleep(60)", ["--group-prefix", "module", "--task=ocr"]
    commands = {
        "python -m labkit": [sys.executable, "-u", "-m", "labkit", "processor", "--group", "module", "--task=ocr"],
        "not labkit": [sys.executable, "-c", sleep, "labkit", "processor", *flags],  # old code took it for labkit
    }
    started = {
        name: subprocess.Popen(command, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL)
        for name, command in commands.items()
    }
    try:
        deadline = time.monotonic() + 10
        while any(psutil.Process(p.pid).cmdline() != commands[name] for name, p in started.items()):
            assert time.monotonic() < deadline, "a stand-in never ran its command"
        assert local_processors(here) == [started["python -m labkit"].pid]
    finally:
        for process in started.values():
            process.kill()
            process.wait(timeout=5)


def test_labkit_arguments_are_read_after_the_programs_that_run_labkit():
    assert labkit_arguments(["/venv/bin/python3.11", "/venv/bin/labkit", "up"]) == ["up"]
    assert labkit_arguments(["python", "-X", "dev", "-Wignore", "-m", "labkit.cli", "lab"]) == ["lab"]
    assert labkit_arguments(["python", "-Bm", "labkit", "processor"]) == ["processor"]
    assert labkit_arguments(["C:\\venv\\Scripts\\labkit.exe", "processor"]) == ["processor"]
    for other in (
        ["python", "-c", "pass", "labkit", "processor"],
        ["python", "-m", "pytest", "labkit", "processor"],
        ["/venv/bin/notlabkit", "up"],
        ["python", "/opt/notlabkit", "up"],
        ["uv", "run", "labkit", "up"],  # uv starts the labkit process; that one counts
        [],
    ):
        assert labkit_arguments(other) is None, other


def test_the_processor_flags_read_here_are_labkit_processors_own():
    commands = next(action for action in build_parser()._actions if action.dest == "command")
    cli = {flag for action in commands.choices["processor"]._actions for flag in action.option_strings}
    assert {flag for action in processor_flags()._actions for flag in action.option_strings} == cli


def test_supervised_pid_reads_any_processor_name_ending_in_host_and_pid(fake_labkit: Path):
    stack = Child("stack", [str(fake_labkit), "up"], {}, echo=False)  # a `labkit up` stand-in
    not_labkit = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])"
    # A parent whose words end in `labkit` and hold `up`, running no labkit.
    other = Child("other", [sys.executable, "-c", not_labkit, "/opt/notlabkit", "up"], {}, echo=False)
    try:
        deadline = time.monotonic() + 10
        while not (children := psutil.Process(stack.process.pid).children()) or not _started(other):
            assert time.monotonic() < deadline, "a stand-in started nothing"
        pid, host = children[0].pid, socket.gethostname()
        assert supervised_pid(f"processor-{host}-{pid}") == pid
        assert supervised_pid(f"ocr-{host}-{pid}") == pid
        assert supervised_pid(f"ocr-not{host}-{pid}") is None and supervised_pid(f"ocr-{host}-x{pid}") is None
        assert supervised_pid(f"ocr-{host}-{stack.process.pid}") is None  # its parent is no `labkit up`
        unrelated = _started(other)[0].pid
        assert supervised_pid(f"ocr-{host}-{unrelated}") is None  # no labkit processor, under no labkit
    finally:
        for parent in (stack, other):
            family = psutil.Process(parent.process.pid).children()
            for child in family:
                child.kill()  # no parent-death signal on the grandchild: end it here
            psutil.wait_procs(family, timeout=5)
            parent.stop(timeout=2)
