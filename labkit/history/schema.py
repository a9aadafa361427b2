"""The history's tables: numbered migrations labkit runs, and index versions that a replay fills.

Two kinds of version live here:

* **Schema migrations** (``labkit_schema``): each entry of :data:`MIGRATIONS` runs once, in
  order, under an advisory lock, so the sink and the web app can both start first.
* **Index versions** (``labkit_index``): the rows themselves live in ``images_v<N>``; the view
  ``images`` points at the *active* version. ``labkit sink --rebuild`` fills a new version by
  replaying Kafka from the start, then switches the view in one transaction: readers never see
  a half-built table, and the old one stays until it is dropped. An index version holds the
  vectors of **one embedding model** (``labkit_index.embedding_model``): after a model change,
  ``labkit sink --rebuild --reembed`` fills a new version with the new model's vectors.

One row per request id holds everything the streams say about it: the request's thumbnail,
content hash and size (from ``image-requests``), each task's result (``image-results``) and the
image embedding with the model that made it (``image-embeddings``). Without pgvector the
embedding is kept as float16 bytes and searched exactly (``labkit.history.search``).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection, sql
from psycopg.rows import dict_row

#: Key of the advisory lock that serialises migrations and index switches across processes.
LOCK_KEY = 0x6C61626B  # "labk"

#: (version, statements): each runs once, in order; never edit one that has shipped, add the next.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE IF NOT EXISTS labkit_index (
                   version integer PRIMARY KEY,
                   state text NOT NULL CHECK (state IN ('building', 'active', 'retired')),
                   created_at timestamptz NOT NULL DEFAULT now(),
                   switched_at timestamptz)""",
        ],
    ),
    (
        2,
        [
            # The one embedding model whose vectors an index version holds (NULL: the first one written).
            "ALTER TABLE labkit_index ADD COLUMN IF NOT EXISTS embedding_model text",
        ],
    ),
    (
        3,
        [
            # Which ANN index each model's vectors have in each index version (labkit.history.vector_index).
            """CREATE TABLE IF NOT EXISTS labkit_vector_index (
                   version integer NOT NULL,
                   model text NOT NULL,
                   dim integer NOT NULL,
                   kind text NOT NULL CHECK (kind IN ('hnsw', 'ivfflat')),
                   lists integer,
                   rows_at_build bigint,
                   built_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY (version, model, dim))""",
        ],
    ),
]


def table(version: int) -> str:
    """The name of index version ``version``'s table, for messages (SQL takes :func:`table_id`)."""
    return f"images_v{int(version)}"


def table_id(version: int) -> sql.Identifier:
    """Index version ``version``'s table as an SQL identifier (quoted as needed), to compose into SQL."""
    return sql.Identifier(table(version))


#: The columns of an index version's table; ``{embedding}`` is pgvector's ``halfvec``, or bytes without pgvector.
_COLUMNS = sql.SQL("""
    request_id text PRIMARY KEY,
    sent_at timestamptz,
    filename text,
    content_type text,
    size_bytes integer,
    width integer,
    height integer,
    content_sha256 bytea,
    thumbnail bytea,
    results jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    top_label text,
    top_score real,
    ocr_text text,
    ocr_tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', coalesce(ocr_text, ''))) STORED,
    embedding {embedding},
    embedding_model text""")

#: A connection (a pooled one from :meth:`labkit.history.database.Database.connect`, or any psycopg 3 connection).
Conn = Connection[Any]


def migrate(connection: Conn, has_vector: bool) -> None:
    """Run the migrations this database lacks and make sure an index version is active, in one transaction."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    connection.execute(
        "CREATE TABLE IF NOT EXISTS labkit_schema (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())"
    )
    applied = {
        row["version"] for row in connection.cursor(row_factory=dict_row).execute("SELECT version FROM labkit_schema")
    }
    for version, statements in MIGRATIONS:
        if version not in applied:
            for statement in statements:
                connection.execute(statement)
            connection.execute("INSERT INTO labkit_schema (version) VALUES (%s)", (version,))
    if active_version(connection) is None:
        activate(connection, new_index_version(connection, has_vector))


def _value(connection: Conn, query: str, params: tuple = ()) -> Any:
    """The one column ``value`` of the first row ``query`` returns; None if it returns none."""
    row = connection.cursor(row_factory=dict_row).execute(query, params).fetchone()
    return row["value"] if row else None


def schema_version(connection: Conn) -> int:
    """The newest migration applied."""
    return _value(connection, "SELECT coalesce(max(version), 0) AS value FROM labkit_schema")


def active_version(connection: Conn) -> int | None:
    """The index version the ``images`` view shows (None before the first)."""
    return _value(connection, "SELECT version AS value FROM labkit_index WHERE state = 'active'")


def new_index_version(connection: Conn, has_vector: bool, embedding_model: str | None = None) -> int:
    """Create an empty ``images_v<N+1>`` (``building``) for ``embedding_model``'s vectors; return N+1.

    ``embedding_model`` None: the version takes the model of the first embedding written to it.
    """
    version = _value(connection, "SELECT coalesce(max(version), 0) + 1 AS value FROM labkit_index")
    name = table(version)
    columns = _COLUMNS.format(embedding=sql.SQL("halfvec" if has_vector else "bytea"))
    # DDL takes no parameters: names are composed as identifiers (quoted as needed), never pasted in as text.
    connection.execute(sql.SQL("CREATE TABLE {} ({})").format(table_id(version), columns))
    for suffix, indexed in (
        ("sent_at", "(sent_at DESC, request_id)"),
        ("sha256", "(content_sha256)"),
        ("ocr", "USING gin (ocr_tsv)"),
    ):
        index = sql.Identifier(f"{name}_{suffix}")
        connection.execute(sql.SQL("CREATE INDEX {} ON {} {}").format(index, table_id(version), sql.SQL(indexed)))
    connection.execute(
        "INSERT INTO labkit_index (version, state, embedding_model) VALUES (%s, 'building', %s)",
        (version, embedding_model),
    )
    return version


def index_model(connection: Conn, version: int | None = None) -> str | None:
    """The embedding model of an index version's vectors (default: the active one); None if not yet known."""
    if version is None:
        return _value(connection, "SELECT embedding_model AS value FROM labkit_index WHERE state = 'active'")
    return _value(connection, "SELECT embedding_model AS value FROM labkit_index WHERE version = %s", (version,))


def adopt_model(connection: Conn, version: int, embedding_model: str) -> str:
    """The version's embedding model, set to ``embedding_model`` if unset (the first embedding decides)."""
    connection.execute(
        "UPDATE labkit_index SET embedding_model = %s WHERE version = %s AND embedding_model IS NULL",
        (embedding_model, version),
    )
    return index_model(connection, version) or embedding_model


def activate(connection: Conn, version: int) -> None:
    """Point the ``images`` view at ``version`` and retire the version it showed before (one transaction)."""
    connection.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
    connection.execute("UPDATE labkit_index SET state = 'retired' WHERE state = 'active'")
    connection.execute("UPDATE labkit_index SET state = 'active', switched_at = now() WHERE version = %s", (version,))
    connection.execute("DROP VIEW IF EXISTS images")  # a new version may differ in column types (with pgvector or not)
    connection.execute(sql.SQL("CREATE VIEW images AS SELECT * FROM {}").format(table_id(version)))


def retire(connection: Conn, version: int) -> None:
    """Stop writing to a version that will never be active: the live sink skips it; its number stays used."""
    connection.execute("UPDATE labkit_index SET state = 'retired' WHERE version = %s", (version,))
