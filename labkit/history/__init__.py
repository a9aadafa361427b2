"""The history: a Kafka → PostgreSQL sink (its own consumer group) and search over what it kept.

* :mod:`~labkit.history.database` — which PostgreSQL (embedded by default, or ``LABKIT_DATABASE_URL``), and a pool
  of connections to it shared by everything in one process;
* :mod:`~labkit.history.embedded` — the embedded server: joined by each process that uses it, stopped once none does;
* :mod:`~labkit.history.keeper` — the process that owns the embedded server and stops it;
* :mod:`~labkit.history.schema` — migrations and index versions (``images`` shows the active one);
* :mod:`~labkit.history.store` — the idempotent, order-independent upserts, one per stream;
* :mod:`~labkit.history.sink` — the consumer group: poll → one transaction → commit offsets;
* :mod:`~labkit.history.service` — ``labkit sink`` as a process: the sink run until Ctrl-C or SIGTERM;
* :mod:`~labkit.history.rebuild` — replay into a new index version (``labkit sink --rebuild``);
* :mod:`~labkit.history.reembed` — after a model change, the kept requests embedded again;
* :mod:`~labkit.history.search` — newest first, by text or image, by OCR words, duplicates.
* :mod:`~labkit.history.vector_index` — each model's ANN index: HNSW while few, IVFFlat once many, kept fitted.
"""

from .database import Database, DatabaseUnavailable, open_database
from .rebuild import ReplayIncomplete, rebuild
from .reembed import ReembedStats, reembed
from .search import Duplicates, Hit, duplicates, history, nearest, similar, text_search
from .sink import Sink, SinkStats, sink_group, sink_topics

__all__ = [
    "Database",
    "DatabaseUnavailable",
    "Duplicates",
    "Hit",
    "ReembedStats",
    "ReplayIncomplete",
    "Sink",
    "SinkStats",
    "duplicates",
    "history",
    "nearest",
    "open_database",
    "rebuild",
    "reembed",
    "similar",
    "sink_group",
    "sink_topics",
    "text_search",
]
