"""A TCP proxy between Kafka clients and a broker that breaks the network on cue.

It can cut every connection, or lose one produce request.

Failures that decide how Kafka clients must be configured are rare and hard to stage: a broker
restarting, a network blip that loses one request while the next one gets through. This proxy
stages them at will, with a real broker behind it, for notebook 11 and the failure tests:

* ``cut()`` / ``restore()``: the broker becomes unreachable and comes back, its data intact —
  what clients see when Apache Kafka restarts or the network fails.
* ``lose_next_produce()``: the next Produce request never reaches the broker, the one after it
  does but its answer never comes back, then the connection drops. The producer retries both, so without idempotence the
  second batch is written before the first, and twice: **reordering and duplicates**.

The broker must advertise the proxy's port (``labkit.start_broker(port, advertised_port=proxy.port)``),
or clients would bypass the proxy after their first metadata request.
"""

from __future__ import annotations

import socket
import struct
import threading

PRODUCE_API_KEY = 0  # the first int16 of every Kafka request header says which API it calls


class ChaosProxy:
    """Listen on ``port`` and forward each connection to the broker at ``target_port``."""

    def __init__(self, port: int, target_port: int, host: str = "127.0.0.1"):
        self.port, self.target_port, self.host = port, target_port, host
        self._server: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._lose_produce = False  # armed by lose_next_produce()
        self.lost_requests = 0

    # --- the network as a whole --------------------------------------------------------------

    def restore(self) -> ChaosProxy:
        """(Start) accepting connections."""
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen()
        self._server = server
        threading.Thread(target=self._accept, args=(server,), name="chaos-proxy", daemon=True).start()
        return self

    start = restore

    def cut(self) -> None:
        """Refuse new connections and reset the open ones, as a dead broker or network would."""
        if self._server:
            # shutdown() first: on Linux, close() alone leaves a thread blocked in accept() holding the
            # listening socket open, and the next client to connect would still get through.
            try:
                self._server.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._server.close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                _close(connection)
            self._connections.clear()

    def lose_next_produce(self) -> None:
        """Lose the next Produce request, pass the one after it, then drop that connection."""
        self._lose_produce = True

    # --- plumbing --------------------------------------------------------------------------------

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:  # cut(): the listening socket was closed
                return
            try:
                broker = socket.create_connection((self.host, self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, broker]
            # Set once this connection is about to break: from then on no response reaches the client, so it
            # cannot learn that the request let through was written (on a busy machine it otherwise might).
            breaking = threading.Event()
            threading.Thread(target=self._requests, args=(client, broker, breaking), daemon=True).start()
            threading.Thread(target=self._responses, args=(broker, client, breaking), daemon=True).start()

    def _requests(self, client: socket.socket, broker: socket.socket, breaking: threading.Event) -> None:
        """Client → broker, one whole request at a time (4-byte size, then the request)."""
        losing = False
        try:
            while True:
                size = _read_exactly(client, 4)
                request = _read_exactly(client, struct.unpack(">i", size)[0])
                is_produce = struct.unpack(">h", request[:2])[0] == PRODUCE_API_KEY
                if is_produce and self._lose_produce and not losing:
                    self._lose_produce, losing = False, True
                    self.lost_requests += 1
                    continue  # this request vanishes on the way
                if is_produce and losing:  # the next one gets through, unanswered; then the connection breaks
                    breaking.set()
                    broker.sendall(size + request)
                    break
                broker.sendall(size + request)
        except (OSError, ConnectionError):
            pass
        _close(client)
        _close(broker)

    @staticmethod
    def _responses(broker: socket.socket, client: socket.socket, breaking: threading.Event) -> None:
        try:
            while (data := broker.recv(65536)) and not breaking.is_set():
                client.sendall(data)
        except OSError:
            pass
        _close(client)
        _close(broker)


def _read_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    connection.close()
