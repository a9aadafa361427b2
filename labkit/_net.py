"""TCP ports on this machine: is one taken, and which are free."""

from __future__ import annotations

import socket


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free ports (a three-broker cluster's client ports: N, N+1, N+2)."""
    for _ in range(100):
        first = free_port(host)
        if first + count <= 65535 and not any(_taken(host, port) for port in range(first, first + count)):
            return first
    raise OSError(f"found no {count} consecutive free TCP ports on {host}")


def _taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
