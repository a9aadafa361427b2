"""TCP ports on this machine: is one taken, and which are free."""

from __future__ import annotations

import random
import socket
from pathlib import Path


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now, outside the OS's range for outgoing connections (see free_ports)."""
    return free_ports(1, host)


def free_ports(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free ports (a three-broker cluster's client ports: N, N+1, N+2).

    Chosen below the OS's ephemeral range, the ports it hands to outgoing connections: a JVM takes
    seconds before it binds its port, and a port from that range could meanwhile become the local
    end of some client's connection (measured: a Kafka node failed with "Address already in use").
    """
    below = _ephemeral_range()[0]
    for _ in range(200):
        first = random.randrange(10_000, below - count)
        if not any(_taken(host, port) for port in range(first, first + count)):
            return first
    raise OSError(f"found no {count} consecutive free TCP ports on {host} between 10000 and {below}")


def _ephemeral_range() -> tuple[int, int]:
    """Ports this machine gives outgoing connections (Linux: ip_local_port_range; else IANA's 49152–65535)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
        return low, high
    except (OSError, ValueError):
        return 49152, 65535


def _taken(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False
