"""Replay rebuilds the history: a new index version filled from the start of the topics, then switched to in one step.

The history is only a view of what Kafka holds, so it can always be made again: a consumer
group that has never committed (``<sink group>-rebuild-v<N>``) reads every topic from its
earliest offset into a fresh index version, while the live sink keeps writing new records to
both the active version and the new one (the upserts make the overlap harmless). When the
replay has caught up, one transaction points the ``images`` view at the new version.

After a **model change** the same path re-indexes: ``--reembed`` first runs a re-embedding
group over the kept requests (``labkit.history.reembed``) with the new model, so the replay
finds every image's new vector in ``image-embeddings``; the new version holds that model's
vectors only. What the topics no longer hold (past ``retention.ms``) is not in the new version.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ..config import Settings
from .database import Database
from .reembed import reembed as reembed_requests
from .schema import activate, index_model, new_index_version
from .sink import Sink, sink_group, sink_topics

if TYPE_CHECKING:
    from ..clip import Scorer

log = logging.getLogger(__name__)


def rebuild(
    settings: Settings,
    database: Database,
    reembed: bool = False,
    scorer: Scorer | None = None,
    idle_s: float = 2.0,
    timeout_s: float = 3600.0,
) -> int:
    """Replay the topics from their start into a new index version, then make it the active one; returns its number.

    ``reembed``: first embed every kept request again with ``settings``' CLIP model (or
    ``scorer``); the new version holds that model's vectors. Without it, the new version holds
    the vectors of the model the active one holds.
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
        activate(connection, version)
    log.info(
        "sink: index version %d is active (%d records replayed from %s)",
        version,
        replay.stats.written,
        ", ".join(sink_topics(settings)),
    )
    return version
