"""Notebook 19's diagnose() check, fed plausible wrong diagnoses.

Each must fail with feedback that names the mistake.
"""

from __future__ import annotations

import pytest

import labkit
from labkit.exercises import ExerciseFailed, check_diagnosis
from labkit.exercises.troubleshooting import DIAGNOSES, stage_situations


def fails(says: str, diagnose, settings) -> None:
    with pytest.raises(ExerciseFailed) as feedback:
        check_diagnosis(settings, diagnose)
    assert says in str(feedback.value), str(feedback.value)
    assert len(str(feedback.value)) > 30


def _reachable_then(settings, rule) -> str:
    """Broker and topic checked as the solution does; ``rule(rows)`` decides between 'not consuming' and 'ok'."""
    try:
        labkit.wait_for_broker(settings)
    except labkit.BrokerUnavailable:
        return "broker unreachable"
    try:
        rows = labkit.describe_topics(settings, [settings.requests_topic])
    except labkit.TopicMissing:
        return "topic missing"
    return "not consuming" if rule(rows) else "ok"


def right(settings) -> str:
    return _reachable_then(
        settings, lambda rows: any(r.high > (r.low if r.committed is None else r.committed) for r in rows)
    )


def test_the_staged_situations_are_what_they_claim(settings):
    situations = stage_situations(settings)
    assert [s.truth for s in situations] == list(DIAGNOSES)
    assert [right(s.settings) for s in situations] == list(DIAGNOSES)


def test_plausible_wrong_diagnoses_fail_with_what_to_fix(settings, capsys):
    fails("Define `diagnose(settings)`", "ok", settings)
    fails("wrong in 3 of 4", lambda s: "ok", settings)  # the template
    fails("return one of", lambda s: "broken", settings)
    # Asked for the topic first, without catching: BrokerUnavailable escapes on the unreachable broker.
    fails("raised BrokerUnavailable", lambda s: labkit.describe_topics(s, [s.requests_topic]) and "ok", settings)
    # Lag alone: None (never committed) read as "no lag" misses the stalled group.
    fails(
        "the truth is 'not consuming'",
        lambda s: _reachable_then(s, lambda rows: any((r.lag or 0) > 0 for r in rows)),
        settings,
    )
    # Any uncommitted partition read as stalled: an empty partition is not waiting for anyone.
    fails(
        "the truth is 'ok'",
        lambda s: _reachable_then(s, lambda rows: any(r.committed is None or (r.lag or 0) > 0 for r in rows)),
        settings,
    )
    check_diagnosis(settings, right)
    assert "✅" in capsys.readouterr().out
