"""Apache Kafka in KRaft mode as labkit's own child processes: 1–9 nodes, each broker and controller.

What happens on :meth:`ApacheKafka.start`, in the order an operator would do it by hand:

1. Java and Kafka's jars are found (:mod:`.distribution`: ``KAFKA_HOME``, else Maven, once).
2. Each node gets a ``server.properties`` written by :func:`server_properties` (every line says
   why) and a log folder under the cluster's data folder, which survives restarts: topics,
   committed offsets and the history's replay are still there next time (``--fresh`` wipes it).
3. A new data folder is formatted once with one cluster id (``kafka-storage format``).
4. The nodes start (``kafka.Kafka server.properties``), their output in ``kafka1.log``…
5. Ready means ready over the Kafka protocol: each node answers a metadata request on its own
   address and lists itself among the live brokers (once the controller quorum has unfenced it).

SIGTERM makes a node shut down cleanly (it hands its partitions' leadership to the others
first); :meth:`ApacheKafka.kill_node` SIGKILLs one, as a power cut would, for lessons and tests.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from typing_extensions import Self

from ..._logging import ServiceLogFile
from ..._net import free_port, port_is_open
from ..._process import is_running
from ...config import KAFKA_VERSION
from ...errors import LabkitError
from ...ops.supervisor import Child, Supervisor
from .base import Broker
from .distribution import KafkaRuntime, kafka_runtime
from .kraft import Node, new_cluster_id, server_properties

log = logging.getLogger(__name__)

#: The main class of a Kafka node, and of the tool that formats its storage.
KAFKA_MAIN, STORAGE_TOOL = "kafka.Kafka", "kafka.tools.StorageTool"


class ApacheKafka(Broker):
    """An Apache Kafka cluster of ``brokers`` KRaft nodes on this machine; a context manager.

    Node ``i`` (from 1) serves clients on ``port + i - 1`` (9092, 9093, 9094); controller ports are
    chosen free once and kept in ``<data_dir>/cluster.json``. ``data_dir=None`` makes a throw-away
    cluster in a temporary folder, removed on :meth:`stop` (like Tansu's memory). Node output goes
    to ``<log_dir>/kafka<i>.log`` (default: the node's folder).
    """

    engine = "kafka"

    def __init__(
        self,
        port: int = 9092,
        host: str = "127.0.0.1",
        brokers: int = 1,
        data_dir: Path | None = None,
        version: str = KAFKA_VERSION,
        advertised_host: str | None = None,
        advertised_port: int | None = None,
        heap_mb: int = 512,
        log_dir: Path | None = None,
        cache_dir: Path | None = None,
        fresh: bool = False,
        say: Callable[[str], None] | None = None,
    ):
        if brokers < 1:
            raise LabkitError(f"--brokers {brokers}: a cluster needs at least one broker.")
        if advertised_port is not None and brokers > 1:
            raise LabkitError("advertised_port (a port behind a proxy) is for a one-node cluster only.")
        self.port, self.host, self.brokers = port, host, brokers
        self.advertised_host = advertised_host or ("localhost" if host in ("0.0.0.0", "::") else host)
        self.advertised_port = advertised_port
        self.version, self.heap_mb, self.fresh = version, heap_mb, fresh
        self.throwaway = data_dir is None
        self.data_dir = data_dir
        self.log_dir = log_dir
        self.cache_dir = cache_dir or default_cache_dir()
        self.say = say or log.info
        self.runtime: KafkaRuntime | None = None
        self.nodes: dict[int, Node] = {}
        self.children: dict[int, Child] = {}
        self._logs: list[ServiceLogFile] = []
        self.description = self._describe()

    def _describe(self) -> str:
        return f"Apache Kafka {self.version} (KRaft, {self.brokers} node{'s' if self.brokers > 1 else ''})"

    # --- addresses ------------------------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        if self.advertised_port is not None:
            return f"{self.advertised_host}:{self.advertised_port}"
        return ",".join(f"{self.advertised_host}:{self.port + i}" for i in range(self.brokers))

    # --- start and stop -------------------------------------------------------------------------

    def start(self, timeout: float = 120.0) -> Self:
        """Find Kafka, configure each node, format new storage, start every node, wait until all serve."""
        try:
            self.runtime = kafka_runtime(self.version, self.cache_dir, self.say)
            self.version = self.runtime.version
            self.description = self._describe()  # KAFKA_HOME may hold another version
            self._prepare_folder()
            for node in self.nodes.values():
                self._start_child(node)
            self.wait_until_serving(list(self.nodes), timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_folder(self) -> None:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="labkit-kafka-"))
        elif self.fresh and self.data_dir.exists():
            self.say(f"--fresh: removing the cluster's data in {self.data_dir}")
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state_file = self.data_dir / "cluster.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        if state and state.get("brokers") != self.brokers:
            raise LabkitError(
                f"{self.data_dir} holds a cluster of {state.get('brokers')} node(s), not {self.brokers}. "
                "Start it with the same --brokers, or wipe it with --fresh."
            )
        if (owner := state.get("owner_pid")) and owner != os.getpid() and is_running(owner):
            raise LabkitError(
                f"Another labkit (pid {owner}) runs the Kafka cluster in {self.data_dir}. Use it "
                f"(--bootstrap {self.bootstrap_servers}), stop it, or give this one another --kafka-dir."
            )
        for i in range(self.brokers):
            if port_is_open("127.0.0.1", self.port + i):
                raise LabkitError(
                    f"Port {self.port + i} is already in use, so Kafka node {i + 1} cannot listen there. If it is a "
                    f"Kafka broker, use it with --bootstrap localhost:{self.port + i}; otherwise choose another "
                    "first port with --broker-port."
                )
        clients = range(self.port, self.port + self.brokers)
        controllers = []
        for kept in state.get("controller_ports", [None] * self.brokers):
            port = kept if kept and not port_is_open("127.0.0.1", kept) else free_port()
            while port in clients or port in controllers:
                port = free_port()
            controllers.append(port)
        cluster_id = state.get("cluster_id") or new_cluster_id()
        for i in range(self.brokers):
            node_id = i + 1
            advertised = f"{self.advertised_host}:{self.advertised_port or self.port + i}"
            folder = self.data_dir / f"node-{node_id}"
            self.nodes[node_id] = Node(node_id, self.host, self.port + i, advertised, controllers[i], folder)
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes.values())
        for node in self.nodes.values():
            node.folder.mkdir(exist_ok=True)
            node.hold_file.unlink(missing_ok=True)
            node.properties_file.write_text(server_properties(node, voters, self.brokers))
        self._format([n for n in self.nodes.values() if not (n.log_dir / "meta.properties").exists()], cluster_id)
        state = {
            "cluster_id": cluster_id,
            "brokers": self.brokers,
            "version": self.version,
            "bootstrap": self.bootstrap_servers,
            "controller_ports": controllers,
            "owner_pid": os.getpid(),
        }
        state_file.write_text(json.dumps(state, indent=1))

    def _format(self, nodes: list[Node], cluster_id: str) -> None:
        """``kafka-storage format`` each new node's log folder with the cluster id (all at once: a JVM each)."""
        if not nodes:
            return
        assert self.runtime is not None
        self.say(f"formatting storage for node(s) {', '.join(str(n.node_id) for n in nodes)}: cluster id {cluster_id}")
        running = [
            subprocess.Popen(
                self.runtime.command(STORAGE_TOOL, "format", "-t", cluster_id, "-c", str(node.properties_file)),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for node in nodes
        ]
        for node, process in zip(nodes, running):
            output, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise LabkitError(
                    f"Formatting Kafka node {node.node_id}'s storage failed: {output.strip()[-400:]}. "
                    f"Wipe the cluster with --fresh, or remove {self.data_dir}."
                )

    def _jvm_options(self) -> tuple[str, ...]:
        # The heap and garbage collector settings of Kafka's own kafka-server-start.sh / kafka-run-class.sh,
        # with a smaller heap: a lab runs up to three brokers on a laptop.
        return (
            f"-Xmx{self.heap_mb}m",
            f"-Xms{min(self.heap_mb, 256)}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
        )

    def _start_child(self, node: Node) -> Child:
        assert self.runtime is not None
        folder = self.log_dir or node.folder
        output = ServiceLogFile(folder, f"kafka{node.node_id}")
        self._logs.append(output)
        command = self.runtime.command(KAFKA_MAIN, str(node.properties_file), jvm=self._jvm_options())
        child = Child(
            f"kafka{node.node_id}",
            command,
            {},
            echo=False,
            log=output,
            pid_file=node.pid_file,
            hold_file=node.hold_file,
        )
        self.children[node.node_id] = child
        return child

    def wait_until_serving(self, node_ids: Iterable[int], timeout: float = 120.0) -> None:
        """Block until every node in ``node_ids`` answers on its own address and lists itself as a broker."""
        waiting = set(node_ids)
        deadline = time.monotonic() + timeout
        while True:
            for node_id in sorted(waiting):
                child = self.children.get(node_id)
                if child is not None and child.process.poll() is not None and not child.held:
                    raise LabkitError(
                        f"Kafka node {node_id} exited with code {child.process.returncode} while starting. Its last "
                        f"output: {' / '.join(list(child.tail)[-3:]) or 'none'}"
                        + (f" (all of it in {child.log.path})" if child.log is not None else "")
                    )
                if node_serves(self.nodes[node_id].reachable, node_id):
                    waiting.discard(node_id)
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise LabkitError(
                    f"Kafka node(s) {sorted(waiting)} did not join the cluster within {timeout:.0f} s; "
                    f"see {self.log_dir or self.data_dir} (kafka<N>.log)."
                )
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every node at once (each shuts down cleanly); SIGKILL what is left after ``timeout`` s."""
        running = [c for c in self.children.values() if c.process.poll() is None]
        for child in running:
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in running:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
        self.children.clear()
        for output in self._logs:
            output.close()
        self._logs.clear()
        if self.data_dir is not None:
            if self.throwaway:
                shutil.rmtree(self.data_dir, ignore_errors=True)
            else:
                _release(self.data_dir / "cluster.json")

    def failure(self) -> str | None:
        return None  # a dead node is restarted by the supervisor (supervised_children); the others keep serving

    def supervised_children(self) -> list[Child]:
        return list(self.children.values())  # a dead node is restarted; one stopped on purpose is held

    def supervise(self, say: Callable[[str], None]) -> Callable[[], None]:
        """A check to call every half second: restarts dead nodes (not those stopped on purpose), with backoff."""
        return Supervisor(self.supervised_children(), say).check

    # --- one node on purpose (lessons and tests) -----------------------------------------------------

    def stop_node(self, node_id: int, timeout: float = 60.0, wait: bool = True) -> None:
        """Shut node ``node_id`` down cleanly (SIGTERM: controlled shutdown) until :meth:`start_node`.

        ``wait=False`` returns at once, while the node hands its leaderships over (:meth:`start_node` waits for
        its exit before starting it again)."""
        child = self._child(node_id)
        self.nodes[node_id].hold_file.touch()
        child.process.send_signal(signal.SIGTERM)
        if not wait:
            return
        try:
            child.process.wait(timeout)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()

    def kill_node(self, node_id: int) -> None:
        """SIGKILL node ``node_id`` (no clean shutdown: a power cut); it stays down until :meth:`start_node`."""
        child = self._child(node_id)
        self.nodes[node_id].hold_file.touch()
        child.process.kill()
        child.process.wait()

    def start_node(self, node_id: int, timeout: float = 120.0) -> None:
        """Start node ``node_id`` again and wait until it serves."""
        child = self._child(node_id)
        if child.held:
            child.process.wait(timeout)  # still shutting down after stop_node(wait=False)
        self.nodes[node_id].hold_file.unlink(missing_ok=True)
        if child.process.poll() is not None:
            child.start()
        self.wait_until_serving([node_id], timeout)

    def pids(self) -> list[int]:
        return [pid for node_id in sorted(self.children) if (pid := self.node_pid(node_id)) is not None]

    def node_pid(self, node_id: int) -> int | None:
        """The pid of node ``node_id``'s process while it runs, else None."""
        child = self._child(node_id)
        return child.process.pid if is_running(child.process.pid) else None

    def _child(self, node_id: int) -> Child:
        if node_id not in self.children:
            raise LabkitError(f"No Kafka node {node_id} here: this cluster's nodes are {sorted(self.nodes)}.")
        return self.children[node_id]


def node_serves(address: str, node_id: int) -> bool:
    """True when the node at ``address`` answers a metadata request and lists itself as a live broker.

    Asked of the node itself: the cluster's metadata still lists a SIGKILLed node until the
    controller fences it (``broker.session.timeout.ms``, 9 s), so asking another node says nothing.
    """
    from confluent_kafka.admin import AdminClient

    config: dict[str, Any] = {
        "bootstrap.servers": address,
        "socket.connection.setup.timeout.ms": 1000,  # nothing listens yet: try again soon
        "logger": logging.getLogger("labkit.librdkafka"),
    }
    try:
        return node_id in AdminClient(config).list_topics(timeout=1).brokers
    except Exception:  # KafkaException while it does not answer yet
        return False


def default_cache_dir() -> Path:
    """Where fetched Kafka jars are kept: ``$XDG_CACHE_HOME/labkit/kafka`` (``~/.cache/labkit/kafka``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "labkit" / "kafka"


def _release(state_file: Path) -> None:
    """Forget this process as the cluster's owner (the next labkit may start it)."""
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        return
    if state.get("owner_pid") == os.getpid():
        state["owner_pid"] = None
        state_file.write_text(json.dumps(state, indent=1))
