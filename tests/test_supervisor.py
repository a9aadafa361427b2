"""The restart policy of `labkit up` on real child processes: backoff, and giving up on a child that keeps crashing."""

from __future__ import annotations

import socket
import sys
import time

import psutil

from labkit.config import Settings
from labkit.ops.stack import Child
from labkit.ops.supervisor import Supervisor, describe_exit, local_processors, supervised_pid

#: A stand-in for a processor: a process whose command line reads ``… labkit processor …`` and that waits.
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "labkit", "processor"]


def _running(child: Child, word: str) -> int:
    """``child``'s pid once its command line (after exec) holds ``word``."""
    deadline = time.monotonic() + 10
    while word not in psutil.Process(child.process.pid).cmdline():
        assert time.monotonic() < deadline, f"{child.name} never ran its command"
    return child.process.pid


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


def test_local_processors_tells_tasks_and_clusters_apart_by_flags_and_variables():
    here = Settings(bootstrap="127.0.0.1:1", group_prefix="found")
    env = {"LABKIT_GROUP_PREFIX": "found", "LABKIT_TASK": "clip"}
    # As `labkit processor --task ocr --bootstrap=…` in a shell: the flags win over the variables.
    by_flags = Child("by-flags", [*SLEEPER, "--task", "ocr", "--bootstrap=127.0.0.1:1"], env, echo=False)
    by_env = Child("by-env", SLEEPER, {**env, "LABKIT_BOOTSTRAP": "127.0.0.1:1"}, echo=False)  # as a stack starts it
    try:
        ocr, clip = _running(by_flags, "--task"), _running(by_env, "processor")
        assert local_processors(here.for_task("ocr")) == [ocr]
        assert local_processors(here) == [clip]
        assert local_processors(here.model_copy(update={"bootstrap": "127.0.0.1:2"})) == []
        assert local_processors(here.model_copy(update={"group_prefix": "labkit"})) == []
    finally:
        by_flags.stop(timeout=2)
        by_env.stop(timeout=2)


def test_supervised_pid_reads_any_processor_name_ending_in_host_and_pid():
    spawn = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import time; time.sleep(60)'])"
    stack = Child("stack", [sys.executable, "-c", spawn, "labkit", "up"], {}, echo=False)  # a `labkit up` stand-in
    try:
        deadline = time.monotonic() + 10
        while not (children := psutil.Process(stack.process.pid).children()):
            assert time.monotonic() < deadline, "the stand-in started nothing"
        pid, host = children[0].pid, socket.gethostname()
        assert supervised_pid(f"processor-{host}-{pid}") == pid
        assert supervised_pid(f"ocr-{host}-{pid}") == pid
        assert supervised_pid(f"ocr-not{host}-{pid}") is None and supervised_pid(f"ocr-{host}-x{pid}") is None
        assert supervised_pid(f"ocr-{host}-{stack.process.pid}") is None  # its parent is no `labkit up`
    finally:
        family = psutil.Process(stack.process.pid).children()
        for child in family:
            child.kill()  # no parent-death signal on the grandchild: end it here
        psutil.wait_procs(family, timeout=5)
        stack.stop(timeout=2)
