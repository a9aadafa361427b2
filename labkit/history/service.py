"""The ``labkit sink`` process: await topics, open the database, rebuild if asked, run until stopped.

The sink itself (:mod:`labkit.history.sink`) only knows how to write a batch; this module is the
process around it. It may first rebuild the history (:mod:`labkit.history.rebuild`, which runs
sinks of its own), then runs one member of the sink group until Ctrl-C or SIGTERM, and closes
the database's connections on the way out. ``--fit-index`` instead fits each model's vector index
to its count once (:mod:`labkit.history.vector_index`) and exits.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .._process import on_stop_signal
from ..config import Settings
from ..kafka.admin import wait_for_topics
from .database import open_database, redacted
from .rebuild import rebuild
from .sink import Sink, sink_topics
from .vector_index import describe, fit_vector_indexes


def run_sink(
    settings: Settings,
    rebuild_first: bool = False,
    reembed: bool = False,
    allow_missing: bool = False,
    ready_file: Path | None = None,
    stats_file: Path | None = None,
) -> None:
    """``labkit sink``: wait for topics, open (or start) the database, run one sink member until stopped."""
    wait_for_topics(settings, sink_topics(settings), who="sink")
    database = open_database(settings)
    try:
        if rebuild_first or reembed:
            version = rebuild(settings, database, reembed=reembed, allow_missing=allow_missing)
            print(f"sink: the history was rebuilt from Kafka into index version {version}, now active", flush=True)
        sink = Sink(settings, database, stats_file=stats_file)
        on_stop_signal(sink.stop)
        where = "embedded PostgreSQL in " + str(settings.history_dir) if database.embedded else redacted(database.url)
        search = "pgvector" if database.has_vector else "exact search (no pgvector)"

        def announce() -> None:  # once the group has given it partitions (how `labkit up` knows it is ready)
            if sink.assigned.wait():
                print(f"sink ready: group {sink.group_id} → {where} ({search})", flush=True)
                if ready_file is not None:
                    ready_file.write_text("sink\n")

        threading.Thread(target=announce, name="announce-ready", daemon=True).start()
        sink.run()
    finally:
        database.close()  # the pool's connections end now, not when the interpreter gets round to it


def fit_index_now(settings: Settings) -> int:
    """``labkit sink --fit-index``: check each model's vector index now, counting exactly; say what it did."""
    database = open_database(settings)
    try:
        fittings = fit_vector_indexes(database, settings.ivfflat_min_rows, exact=True)
    finally:
        database.close()
    for line in describe(fittings):
        print(f"sink: {line}", flush=True)
    return 0 if fittings is not None else 1
