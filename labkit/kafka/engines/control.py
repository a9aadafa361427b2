"""Stop, SIGKILL and start one node of a running labkit Apache Kafka cluster from any process.

``labkit cluster`` and the notebooks use it. The process that started the cluster (``labkit
up``, ``labkit lab``, ``labkit broker``) owns its nodes and restarts one that dies. A node
stopped *on purpose* must stay down, so stopping one leaves a ``held`` file in the node's folder
first; starting it again removes the file, and the owner starts the node at once. Everything
goes through the cluster's data folder, so a notebook kernel can do it to the cluster ``labkit
lab`` runs.
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from ..._process import is_running
from ...config import Settings, load_settings
from ...errors import LabkitError
from .apache import node_serves


@dataclass(frozen=True)
class NodeState:
    """One node as ``labkit cluster status`` shows it."""

    node_id: int
    address: str
    pid: int | None  # None while it is down
    held: bool  # stopped on purpose: nobody restarts it

    @property
    def state(self) -> str:
        return "running" if self.pid else "stopped on purpose" if self.held else "down (being restarted)"


class ClusterControl:
    """The nodes of the Apache Kafka cluster that ``settings`` name (its data folder), whoever started it.

    >>> cluster = ClusterControl()          # LABKIT_ENGINE=kafka LABKIT_BROKERS=3, as `labkit lab` sets them
    >>> cluster.kill(2)                      # SIGKILL node 2: its partitions' leaders move to 1 and 3
    >>> cluster.start(2)                     # back, and in the cluster's metadata again
    """

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.folder = self.settings.kafka_data_dir
        state_file = self.folder / "cluster.json"
        if self.settings.engine != "kafka" or not state_file.exists():
            raise LabkitError(
                f"No Apache Kafka cluster started by labkit in {self.folder}. Start one with "
                "`labkit lab --engine kafka --brokers 3` (or `labkit broker --engine kafka --brokers 3`), "
                "and use the same --engine/--brokers/--broker-port here."
            )
        self.state = json.loads(state_file.read_text())

    @property
    def node_ids(self) -> list[int]:
        return list(range(1, int(self.state["brokers"]) + 1))

    def _node(self, node_id: int) -> Path:
        if node_id not in self.node_ids:
            raise LabkitError(f"No node {node_id}: this cluster's nodes are {', '.join(map(str, self.node_ids))}.")
        return self.folder / f"node-{node_id}"

    def pid(self, node_id: int) -> int | None:
        """The pid of node ``node_id`` while its process runs, else None."""
        try:
            pid = int((self._node(node_id) / "pid").read_text())
        except (OSError, ValueError):
            return None
        return pid if is_running(pid) else None

    def status(self) -> list[NodeState]:
        addresses = self.settings.bootstrap_servers.split(",")
        return [
            NodeState(
                n, addresses[n - 1] if n <= len(addresses) else "?", self.pid(n), (self._node(n) / "held").exists()
            )
            for n in self.node_ids
        ]

    def stop(self, node_id: int, timeout: float = 60.0) -> None:
        """Shut node ``node_id`` down cleanly (SIGTERM: it hands its leaderships over first); it stays down."""
        self._down(node_id, signal.SIGTERM, timeout)

    def kill(self, node_id: int, timeout: float = 30.0) -> None:
        """SIGKILL node ``node_id``, as a power cut would; it stays down until :meth:`start`."""
        self._down(node_id, signal.SIGKILL, timeout)

    def _down(self, node_id: int, sig: signal.Signals, timeout: float) -> None:
        (self._node(node_id) / "held").touch()
        pid = self.pid(node_id)
        if pid is None:
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while is_running(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def start(self, node_id: int, timeout: float = 120.0) -> None:
        """Let node ``node_id`` run again and wait until it is back in the cluster's metadata."""
        owner = json.loads((self.folder / "cluster.json").read_text()).get("owner_pid")
        if not owner or not is_running(owner):
            raise LabkitError(
                f"No labkit runs the cluster in {self.folder} any more, so nobody can start node {node_id}. "
                "Start the cluster again (`labkit lab --engine kafka ...` or `labkit broker --engine kafka ...`)."
            )
        (self._node(node_id) / "held").unlink(missing_ok=True)  # its owner starts it within half a second
        address = self.settings.bootstrap_servers.split(",")[node_id - 1]
        deadline = time.monotonic() + timeout
        while self.pid(node_id) is None or not node_serves(address, node_id):
            if time.monotonic() > deadline:
                raise LabkitError(
                    f"Kafka node {node_id} was not back within {timeout:.0f} s; see kafka{node_id}.log in the "
                    "lab's log folder."
                )
            time.sleep(0.2)
