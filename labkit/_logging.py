"""How labkit logs: a command's own lines on stderr, and each service's output in a capped file.

On stderr, other libraries show their warnings only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path


def log_to_stderr(level: str) -> None:
    """Log to stderr: ``labkit.*`` at ``level``, other libraries (open_clip, ONNX Runtime) at WARNING up.

    The root logger keeps Python's default level (WARNING); only labkit's own logger is set, so
    a program that embeds labkit keeps control of everything else.
    """
    logging.basicConfig(
        stream=sys.stderr, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("labkit").setLevel(level)
    # librdkafka's own complaints about an absent broker: labkit reports broker trouble itself.
    logging.getLogger("labkit.librdkafka").setLevel(logging.NOTSET if level == "DEBUG" else logging.CRITICAL)


#: Each service's log file is rotated past this size, keeping one older file: at most ~2 MB per service.
SERVICE_LOG_BYTES = 1_000_000


class ServiceLogFile:
    """Appends one service's output lines to ``<folder>/<name>.log``, each after the time it arrived.

    Past :data:`SERVICE_LOG_BYTES` the file becomes ``<name>.log.1`` (replacing the older one),
    so a stack that runs for weeks keeps a bounded tail of each service's output.
    """

    def __init__(self, folder: Path, name: str):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}.log"
        self._handler = RotatingFileHandler(self.path, maxBytes=SERVICE_LOG_BYTES, backupCount=1, encoding="utf-8")

    def write(self, line: str) -> None:
        """Append ``line`` after the local time now, to the microsecond (lines of several files merge by it)."""
        stamped = f"{datetime.now().isoformat(timespec='microseconds')} {line}"
        self._handler.handle(logging.makeLogRecord({"msg": stamped, "levelno": logging.INFO, "levelname": "INFO"}))

    def close(self) -> None:
        self._handler.close()


def read_service_logs(
    folder: Path, contains: str | None = None, services: Iterable[str] | None = None, last: int | None = 200
) -> list[str]:
    """The services' log lines in ``folder``, all files, oldest first: ``"<time> <service> | <line>"``.

    ``contains`` keeps the lines with that text (e.g. a request id); ``services`` only those
    files (``["web", "processor"]``, which also matches ``processor2``); ``last`` the newest that
    many (``None``: all).
    """
    wanted = set(services) if services is not None else None
    lines: list[tuple[str, int, str]] = []  # (time, order within its file, shown line): a stable merge by time
    for path in sorted(folder.glob("*.log")) if folder.is_dir() else []:
        if wanted is not None and not {path.stem, path.stem.rstrip("0123456789")} & wanted:  # processor2 is a processor
            continue
        order = 0
        for part in (path.with_name(path.name + ".1"), path):  # the rotated file holds the older lines
            try:
                text = part.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
            for raw in text.splitlines():
                stamp, _, line = raw.partition(" ")
                if contains is None or contains in line:
                    lines.append((stamp, order, f"{stamp} {path.stem} | {line}"))
                order += 1
    lines.sort(key=lambda item: item[:2])
    shown = [line for _, _, line in lines]
    return shown[-last:] if last else shown
