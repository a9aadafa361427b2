"""A TCP forwarder the tests can cut and restore: the network between the clients and a broker failing, with the broker's state intact.

Restarting the embedded broker would not model an Apache Kafka restart: it keeps everything in
memory, so a restarted one is a brand-new, empty cluster (and librdkafka's idempotent producer
never recovers from that: the new broker hands out the same producer id and then rejects it).
Cutting the connection instead is what clients see when a broker restarts or the network fails.
"""

from __future__ import annotations

import socket
import threading


class NetCut:
    """Listen on ``port`` and forward every connection to ``target_port``; ``cut()`` drops all, ``restore()`` listens again."""

    def __init__(self, port: int, target_port: int, host: str = "127.0.0.1"):
        self.port, self.target_port, self.host = port, target_port, host
        self._server: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> NetCut:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((self.host, self.port))
        server.listen()
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and reset the open ones, as a dead broker or network would."""
        if self._server:
            self._server.close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                connection.close()
            self._connections.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:  # cut(): the listening socket was closed
                return
            try:
                upstream = socket.create_connection((self.host, self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
