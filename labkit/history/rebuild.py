"""Rebuild by replay: a new index version filled from the topics' start, then made active in one step.

The history is only a view of what Kafka holds, so it can always be made again: a consumer
group that has never committed (``<sink group>-rebuild-v<N>``) reads every topic from its
earliest offset into a fresh index version, while the live sink keeps writing new records to
both the active version and the new one (the upserts make the overlap harmless). When the
replay has caught up, one transaction points the ``images`` view at the new version.

After a **model change** the same path re-indexes: ``--reembed`` first runs a re-embedding
group over the kept requests (``labkit.history.reembed``) with the new model, so the replay
finds every image's new vector in ``image-embeddings``; the new version holds that model's
vectors only.

A replay is only as complete as the topics: what they no longer hold (past ``retention.ms``, or
written before the broker started empty — the lab's embedded broker keeps records in memory
only) cannot be replayed. So before switching, the rebuild counts the active version's rows the
replay never met; if there are any it **refuses** (:class:`ReplayIncomplete`), unless told
``allow_missing``, rather than drop them from the history without a word.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from psycopg import sql
from psycopg.rows import dict_row

from ..config import Settings
from ..errors import LabkitError
from .database import Database
from .reembed import reembed as reembed_requests
from .schema import activate, active_version, index_model, new_index_version, retire, table, table_id
from .sink import Sink, sink_group, sink_topics

if TYPE_CHECKING:
    from ..clip import Scorer

log = logging.getLogger(__name__)


class ReplayIncomplete(LabkitError):
    """The replay missed rows of the active index version, so the rebuild did not switch to the new one."""


def rows_not_replayed(connection, old: int, new: int) -> tuple[int, int]:
    """How many of index version ``old``'s rows version ``new`` lacks, and how many ``old`` holds."""
    query = sql.SQL(
        "SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM {new} n WHERE n.request_id = o.request_id)) "
        "AS missing, count(*) AS total FROM {old} o"
    ).format(new=table_id(new), old=table_id(old))
    row = connection.cursor(row_factory=dict_row).execute(query).fetchone()
    return row["missing"], row["total"]


def rebuild(
    settings: Settings,
    database: Database,
    reembed: bool = False,
    scorer: Scorer | None = None,
    idle_s: float = 2.0,
    timeout_s: float = 3600.0,
    allow_missing: bool = False,
) -> int:
    """Replay the topics from the start into a new index version, then make it active; returns its number.

    ``reembed``: first embed every kept request again with ``settings``' CLIP model (or
    ``scorer``); the new version holds that model's vectors. Without it, the new version holds
    the vectors of the model the active one holds. ``allow_missing``: switch even when the
    active version holds rows the topics no longer have (they are left out; its table is kept).
    """
    model: str | None
    if reembed:
        from ..clip import build_scorer  # PyTorch or ONNX Runtime: only a re-embedding needs a model

        scorer = scorer or build_scorer(settings)
        model = scorer.model_id
    else:
        with database.connect() as connection:
            model = index_model(connection)
    with database.transaction() as connection:
        version = new_index_version(connection, database.has_vector, model)
    log.info("sink: rebuilding the history into index version %d (vectors of %s)", version, model or "any one model")
    if reembed:
        reembed_requests(settings, f"{sink_group(settings)}-reembed-v{version}", scorer, idle_s, timeout_s)
    replay = Sink(
        settings,
        database,
        group_id=f"{sink_group(settings)}-rebuild-v{version}",
        versions=lambda connection: [(version, index_model(connection, version))],
    )
    try:
        # Up to where the topics end now (a big backlog can take longer than idle_s to start flowing), then until
        # idle: the lab's broker counts batches in its end offsets, so reaching them alone could stop short there.
        replay.drain(idle_s=idle_s, timeout_s=timeout_s, ends=replay.end_offsets())
    finally:
        replay.close()
    with database.transaction() as connection:
        old = active_version(connection)
        assert old is not None, "open_database() migrates, and a migrated history always has an active version"
        missing, total = rows_not_replayed(connection, old, version)
        refused = missing > 0 and not allow_missing
        if refused:
            retire(connection, version)  # a new group per version: the next rebuild replays from the start again
        else:
            activate(connection, version)
    if refused:
        raise ReplayIncomplete(
            f"The replay met {total - missing} of the {total} rows of the active index version {old}: the topics no "
            f"longer hold the records of {missing} (past their retention.ms, or written before the broker started "
            "empty: the lab's embedded broker keeps records in memory only, so a restarted `labkit lab` has empty "
            f"topics while the history on disk keeps its rows). Version {old} stays active; version {version} is "
            "retired. To switch anyway and leave those rows out of the history (their table "
            f"{table(old)} is kept), run `labkit sink --rebuild --allow-missing` (in Python: "
            "rebuild(..., allow_missing=True))."
        )
    if missing:
        log.warning("sink: %d of the %d rows of index version %d were not in the topics any more", missing, total, old)
    log.info(
        "sink: index version %d is active (%d records replayed from %s)",
        version,
        replay.stats.written,
        ", ".join(sink_topics(settings)),
    )
    return version
