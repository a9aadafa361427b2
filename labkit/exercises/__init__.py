"""Checks for the notebook exercises: each says precisely what is wrong.

Each check reads what the learner built on the real broker. A check prints "✅ …" and returns
when the exercise is solved. Otherwise it raises :class:`ExerciseFailed`, which Jupyter shows as
just its message — what is wrong and a hint — without a traceback. The exercises live in the
lesson sources (``notebooks/lessons/``); ``tests/test_learner_path.py`` runs each template, its
check (must fail), the solution and the check again (must pass); ``tests/test_exercises.py``
feeds each check the plausible wrong answers.
"""

from ._feedback import ExerciseFailed
from ._setup import fresh_topic, send_records
from .compaction import check_latest_results
from .compose import check_monitor_service
from .discovery import check_reachable_broker
from .groups import check_partitions_shared
from .history import check_idempotent_upsert
from .kafka_basics import (
    check_consumed_everything,
    check_delivery_reports,
    check_group_caught_up,
    check_partition_prediction,
    check_records_sent,
    check_topic_created,
)
from .monitoring import check_lag_in_seconds
from .offsets import check_rewind
from .ordering import check_ordered_once
from .pubsub import check_colour_group
from .realtime import check_own_labels, check_replayed_window
from .rebalancing import check_keeps_processing
from .reliability import check_at_least_once, check_dead_letter_reason
from .replication import check_survives_broker_loss
from .schemas import check_compatible_evolution
from .transactions import check_exactly_once
from .troubleshooting import check_diagnosis
from .web_api import check_results_as_they_arrive
from .zero_shot import check_unknown_threshold, check_zero_shot_probabilities

__all__ = [  # the setup helpers, then each lesson's checks in lesson order
    "ExerciseFailed",
    "fresh_topic",
    "send_records",
    "check_topic_created",
    "check_partition_prediction",  # 01
    "check_delivery_reports",
    "check_records_sent",  # 02
    "check_consumed_everything",
    "check_group_caught_up",  # 03
    "check_rewind",  # 04
    "check_partitions_shared",  # 05
    "check_keeps_processing",  # 06
    "check_survives_broker_loss",  # 07
    "check_latest_results",  # 08
    "check_zero_shot_probabilities",
    "check_unknown_threshold",  # 09
    "check_own_labels",
    "check_replayed_window",  # 10
    "check_at_least_once",
    "check_dead_letter_reason",  # 11
    "check_ordered_once",  # 12
    "check_exactly_once",  # 13
    "check_reachable_broker",  # 14
    "check_results_as_they_arrive",  # 15
    "check_compatible_evolution",  # 16
    "check_lag_in_seconds",  # 17
    "check_monitor_service",  # 18
    "check_diagnosis",  # 19
    "check_colour_group",  # 20
    "check_idempotent_upsert",  # 21
]
