"""The embedded PostgreSQL's keeper: a process that stops the server once no labkit process uses it.

``python -m labkit.history.keeper PGDATA`` (started by :func:`labkit.history.embedded.join`):

1. it detaches itself (a second fork): it belongs to no lab, so stopping or killing a lab,
   a web app or a notebook kernel never stops it by accident;
2. it records itself as the server's owner in ``owner.json`` (its pid and start time) and says
   ``keeping <pid>`` on its standard output, which the process that started it waits for;
3. it asks for an *exclusive* lock on ``users.lock``, where every process that uses the server
   holds a shared one: the operating system grants it once the last of them has ended, however
   it ended;
4. it stops the server (PostgreSQL's fast shutdown), removes ``owner.json`` and exits. While it
   stops, a process that joins waits for the lock, then starts the server and a keeper again.

SIGTERM (or SIGINT, SIGHUP) makes it stop the server at once, whoever still uses it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

import psutil

from .embedded import Place, stop_postgres

log = logging.getLogger("labkit.history.keeper")


def main(argv: list[str]) -> int:
    place = Place.of(Path(argv[0]))
    users = place.users.open("a")
    if os.fork():  # the parent exits at once, so the keeper's parent is no longer the process that started it
        os._exit(0)
    me = psutil.Process()
    record = {"pid": me.pid, "started": me.create_time(), "pgdata": str(place.pgdata)}
    place.owner.write_text(json.dumps(record))
    print(f"keeping {me.pid}", flush=True)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # the pipe to the process that started it is not read any more

    def stop_now(signum: int, _frame: object) -> None:
        raise SystemExit(f"{signal.Signals(signum).name}: stopping the server now")

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop_now)
    log.info("keeper %d: keeping the PostgreSQL in %s until no labkit process uses it", me.pid, place.pgdata)
    try:
        fcntl.flock(users, fcntl.LOCK_EX)  # blocks until no process holds its shared lock
        log.info("keeper %d: no labkit process uses the server any more: stopping it", me.pid)
    finally:
        started = time.monotonic()
        stop_postgres(place.pgdata)
        _forget(place, me.pid)
        log.info("keeper %d: stopped in %.1f s", me.pid, time.monotonic() - started)
    return 0


def _forget(place: Place, pid: int) -> None:
    """Remove ``owner.json`` if it still names this keeper (a newer one may have taken over after a crash)."""
    try:
        if json.loads(place.owner.read_text()).get("pid") == pid:
            place.owner.unlink()
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")
    sys.exit(main(sys.argv[1:]))
