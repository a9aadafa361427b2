"""The restart policy of `labkit up` on real child processes: backoff, and giving up on a child that keeps crashing."""

from __future__ import annotations

import sys
import time

from labkit.stack import Child
from labkit.supervisor import Supervisor, describe_exit


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
