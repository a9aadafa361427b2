"""Checks for the notebook exercises: each inspects what the learner built (on the real broker) and says precisely what is wrong.

A check prints "✅ …" and returns when the exercise is solved. Otherwise it raises
:class:`ExerciseFailed`, which Jupyter shows as just its message — what is wrong and a hint —
without a traceback. The exercises and their reference solutions live in
``notebooks/build_notebooks.py``; ``tests/test_exercises.py`` proves every check fails on the
untouched template and passes on the solution.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from .admin import read_topic
from .clients import make_admin
from .config import Settings


class ExerciseFailed(AssertionError):
    """Not solved yet; the message says what is wrong and how to fix it."""

    def _render_traceback_(self) -> list[str]:  # IPython: show the feedback, not a stack trace
        return [f"❌ {self}"]


def _require(condition: bool, feedback: str) -> None:
    if not condition:
        raise ExerciseFailed(feedback)


def _solved(message: str) -> None:
    print(f"✅ {message}")


# --- 01 topics and partitions -----------------------------------------------------------------

def check_topic_created(settings: Settings, topic: str, partitions: int) -> None:
    """The learner created ``topic`` with ``partitions`` partitions."""
    _require(isinstance(topic, str),
             "Set `topic` to the name of your topic (a string), then run the cell again.")
    metadata = make_admin(settings).list_topics(timeout=settings.connect_timeout_s)
    _require(topic in metadata.topics,
             f"There is no topic {topic!r} yet. Did the create_topics call run? Call `.result()` on its "
             "future to wait for (and see) the broker's answer.")
    actual = len(metadata.topics[topic].partitions)
    _require(actual == partitions,
             f"{topic!r} has {actual} partition(s), the exercise asks for {partitions}. Partitions cannot be "
             "removed; delete the topic (admin.delete_topics) or pick a new name and create it again.")
    _solved(f"{topic!r} exists with {partitions} partitions — up to {partitions} consumers of one group can "
            "read it in parallel.")


def check_partition_prediction(settings: Settings, topic: str, key: str, predicted: object) -> None:
    """The learner predicted which partition ``key`` lands in, then we produce it and see."""
    _require(isinstance(predicted, int) and not isinstance(predicted, bool),
             "Set `predicted_partition` to a partition number (an int), e.g. 0.")
    from .clients import make_producer

    producer = make_producer(settings, client_id="labkit-exercise")
    landed: list[int] = []
    producer.produce(topic, key=key.encode(), value=b"prediction check",
                     on_delivery=lambda err, msg: landed.append(msg.partition()))
    producer.flush(10)
    _require(bool(landed), "The check could not produce to the topic; is the broker still running?")
    _require(predicted == landed[0],
             f"Key {key!r} went to partition {landed[0]}, not {predicted}. The partition is "
             "hash(key) % partitions; run the cell that produces the same key twice and look where it goes.")
    _solved(f"Key {key!r} always lands in partition {landed[0]}: same key, same partition, so its records "
            "stay in order.")


# --- 02 producers --------------------------------------------------------------------------------

def check_producer_config(config: dict) -> None:
    """The learner's producer configuration is idempotent and has a bootstrap address."""
    _require(isinstance(config, dict), "`config` must be a dict of librdkafka settings.")
    _require(isinstance(config.get("bootstrap.servers"), str) and bool(config["bootstrap.servers"]),
             "Add 'bootstrap.servers' (e.g. settings.bootstrap_servers): where the producer connects first.")
    _require(config.get("enable.idempotence") in (True, "true"),
             "Set 'enable.idempotence': True. Without it, a retry after a lost acknowledgement writes the "
             "record twice and retries can reorder records.")
    _require(config.get("acks", "all") in ("all", -1, "-1"),
             f"'acks' is {config.get('acks')!r}: an idempotent producer needs acks='all' (or leave it out).")
    _solved("Idempotent producer: no duplicates from retries, order kept per partition, acks=all.")


def check_records_sent(settings: Settings, topic: str, expected: int,
                       header: str | None = None, keys: Iterable[str] | None = None) -> None:
    """``topic`` holds ``expected`` records (each with ``header``, keyed by ``keys`` if given)."""
    records = read_topic(settings, topic)
    _require(len(records) > 0,
             f"{topic!r} is empty: nothing was produced, or it is still in the producer's memory buffer. "
             "produce() only queues a record; producer.flush() sends it (and runs the delivery reports).")
    _require(len(records) == expected,
             f"{topic!r} has {len(records)} record(s), expected {expected}. Re-running the cell adds more; "
             "use a new topic name to start over.")
    if header:
        missing = [r.offset() for r in records if header not in dict(r.headers() or [])]
        _require(not missing, f"Records at offsets {missing[:5]} have no {header!r} header; pass "
                              "headers={...} to produce().")
    if keys is not None:
        got = sorted((r.key() or b"").decode() for r in records)
        _require(got == sorted(keys), f"The keys are {got[:5]}…, expected {sorted(keys)[:5]}…")
    _solved(f"{expected} records in {topic!r}" + (f", each with a {header!r} header" if header else "") + ".")


# --- 03 consumers and offsets ------------------------------------------------------------------

def check_consumed_everything(settings: Settings, topic: str, received: list) -> None:
    """The learner's new consumer group read every record already in ``topic``."""
    _require(isinstance(received, list), "`received` must be the list of messages your loop collected.")
    stored = read_topic(settings, topic)
    got = {(m.partition(), m.offset()) for m in received if hasattr(m, "offset")}
    missing = [(m.partition(), m.offset()) for m in stored if (m.partition(), m.offset()) not in got]
    _require(bool(received),
             f"You received 0 of {len(stored)} records. A consumer group with no committed offsets starts "
             "where auto.offset.reset says; 'latest' means 'only records produced from now on'. Set it to "
             "'earliest' — and use a new group.id, since a group that already committed starts from there.")
    _require(not missing, f"You missed {len(missing)} of {len(stored)} records, e.g. (partition, offset) "
                          f"{missing[:3]}. Keep polling until you have them all (poll returns None while waiting).")
    _solved(f"All {len(stored)} records of {topic!r}, from offset 0 of every partition.")


def check_group_caught_up(settings: Settings, topic: str, group_id: str, expected: int) -> None:
    """``group_id`` has committed offsets covering ``expected`` records of ``topic`` (lag 0)."""
    from .admin import describe_topics

    rows = describe_topics(settings, [topic], group_id=group_id)
    committed = sum(r.committed or 0 for r in rows)
    _require(committed > 0,
             f"Group {group_id!r} has committed nothing on {topic!r}: with enable.auto.commit=False you must "
             "call consumer.commit(asynchronous=False) after processing, before close().")
    _require(committed == expected,
             f"Group {group_id!r} committed offsets covering {committed} records, expected {expected}. "
             "Commit after the whole loop (commit() with no arguments commits what you have consumed).")
    _solved(f"{group_id!r} is caught up on {topic!r}: committed offsets cover all {expected} records, lag 0.")


# --- 05 CLIP zero-shot ------------------------------------------------------------------------

def check_zero_shot_probabilities(probs: object, image_vector, label_vectors, logit_scale: float) -> None:
    """The learner turned one image's cosines with each label into CLIP's softmax probabilities."""
    import numpy as np

    from .clip.zero_shot import probabilities

    _require(probs is not Ellipsis and probs is not None,
             "Set `probs` to a NumPy array with one probability per label (replace the `...`).")
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    expected = probabilities(np.asarray(image_vector)[None], np.asarray(label_vectors), logit_scale)[0]
    _require(probs.shape == expected.shape,
             f"`probs` has {probs.size} value(s); there are {expected.size} labels, so expect one per label "
             "(`label_vectors @ image_vector` gives one cosine per label).")
    _require(abs(probs.sum() - 1) < 1e-4,
             f"Your probabilities sum to {probs.sum():.4f}, not 1. Softmax: exponentiate, then divide by the sum.")
    unscaled = probabilities(np.asarray(image_vector)[None], np.asarray(label_vectors), 1.0)[0]
    _require(not np.allclose(probs, unscaled, atol=1e-5) or np.allclose(unscaled, expected, atol=1e-5),
             "Almost: these are the softmax of the raw cosines. Multiply the cosines by `logit_scale` first — "
             "cosines only span ~0.1–0.35, so without it every label gets about the same probability.")
    _require(np.allclose(probs, expected, atol=1e-4),
             f"Not CLIP's probabilities yet: expected {np.round(expected, 4).tolist()}, got "
             f"{np.round(probs, 4).tolist()}. Cosine = label_vectors @ image_vector (they are unit vectors).")
    _solved(f"those are CLIP's probabilities; the best label gets {expected.max():.1%} — relative to these "
            f"{expected.size} labels only.")


def check_unknown_threshold(predict: object) -> None:
    """The learner's ``predict(cosines, threshold)`` returns the best label, or "unknown" when even that is a weak match."""
    _require(callable(predict), "Define a function `predict(cosines, threshold)` (replace the `...`).")
    cases = [
        ({"cat": 0.31, "dog": 0.22, "teapot": 0.12}, 0.25, "cat"),
        ({"cat": 0.18, "dog": 0.21, "teapot": 0.12}, 0.25, "unknown"),
        ({"cat": 0.18, "dog": 0.21, "teapot": 0.12}, 0.20, "dog"),
        ({"rocket": 0.25}, 0.25, "rocket"),
    ]
    for cosines, threshold, expected in cases:
        try:
            answer = predict(dict(cosines), threshold)
        except Exception as exc:  # the learner's code; show what went wrong
            raise ExerciseFailed(f"predict({cosines}, {threshold}) raised {type(exc).__name__}: {exc}") from None
        _require(answer == expected,
                 f"predict({cosines}, threshold={threshold}) returned {answer!r}, expected {expected!r}. "
                 "Take the label with the highest cosine; if that cosine is below the threshold, say "
                 "'unknown' (a cosine exactly at the threshold still counts).")
    _solved("your classifier can say 'unknown' — softmax alone never does, it always picks one of the labels.")


# --- 04 consumer groups -----------------------------------------------------------------------

def _is_closed(consumer: object) -> bool:
    try:
        consumer.assignment()
    except RuntimeError:  # confluent-kafka: "Consumer closed"
        return True
    except AttributeError:
        return False
    return False


def check_partitions_shared(settings: Settings, topic: str, owned: object, consumer_a: object,
                            consumer_b: object) -> None:
    """Two members of one group split ``topic``'s partitions between them, and both were closed."""
    _require(isinstance(owned, dict) and set(owned) == {"a", "b"},
             'Set `owned` to a dict with keys "a" and "b": the partition numbers each consumer was given.')
    a, b = sorted(owned["a"] or []), sorted(owned["b"] or [])
    partitions = len(make_admin(settings).list_topics(topic, timeout=settings.connect_timeout_s).topics[topic].partitions)
    _require(a and b,
             f"One member owns nothing yet (a: {a}, b: {b}). Keep calling poll() on *both* consumers: a "
             "member only joins the group, and receives partitions, inside poll().")
    _require(not set(a) & set(b),
             f"Both members own partition(s) {sorted(set(a) & set(b))}. In one group a partition has exactly one "
             "owner — did the two consumers use different group ids?")
    _require(sorted(a + b) == list(range(partitions)),
             f"Together they own {sorted(a + b)}, but {topic!r} has partitions {list(range(partitions))}. Poll "
             "until the rebalance has finished and every partition is assigned.")
    for name, consumer in (("a", consumer_a), ("b", consumer_b)):
        _require(_is_closed(consumer),
                 f"Consumer {name} is still open: call {name}.close(). An abandoned member keeps its partitions "
                 "until the group gives up on it (max.poll.interval.ms or session.timeout.ms).")
    _solved(f"a owns {a}, b owns {b}, and both left cleanly: that is how processors share the work.")


# --- 06 real time, end to end -----------------------------------------------------------------

def check_own_labels(lab: object, request_ids: object, labels: object) -> None:
    """The learner sent at least three photos with their own candidate labels and has every result."""
    _require(isinstance(labels, (list, tuple)) and len([x for x in labels if isinstance(x, str)]) >= 2,
             "Set `my_labels` to a list of at least two labels of your own (strings), e.g. ['a dog', 'a cat'].")
    _require(isinstance(request_ids, list) and len(request_ids) >= 3,
             f"`request_ids` holds {len(request_ids) if isinstance(request_ids, list) else 'no list of'} id(s); "
             "submit at least three photos (lab.submit returns each request id) and keep the ids in the list.")
    unknown = [r for r in request_ids if r not in lab.sent]
    _require(not unknown, f"{unknown[:2]} were not sent by this LabClient; use the ids lab.submit returned.")
    waiting = [r for r in request_ids if lab.results.get(r) is None]
    _require(not waiting, f"{len(waiting)} result(s) have not arrived yet. Results come back asynchronously: "
                          "call lab.wait(request_id) for each id before you read them.")
    wanted = {" ".join(x.split()) for x in labels if isinstance(x, str) and x.strip()}
    for request_id in request_ids:
        result = lab.results.get(request_id)
        _require(result.status == "ok", f"Request {request_id} failed: {result.error}")
        got = {s.label for s in result.labels}
        _require(got <= wanted,
                 f"Request {request_id} was scored against {sorted(got)[:4]}…, not your labels. Pass "
                 "labels=my_labels to lab.submit, so they travel with the request (a Kafka header).")
    _solved(f"{len(request_ids)} photos scored against your {len(wanted)} labels — the processor embedded "
            "your labels once and cached them for the rest.")


def check_latency_percentiles(frame: object, p50: object, p95: object) -> None:
    """The learner computed the median and 95th percentile of the results' upload→result latency."""
    import numpy as np

    _require(hasattr(frame, "columns") and "total ms" in frame.columns,
             "`frame` must be lab.results_frame() (a pandas DataFrame with a 'total ms' column).")
    values = frame["total ms"].dropna().to_numpy(dtype=float)
    _require(len(values) > 0, "There are no results in `frame` yet; send some photos first.")
    for name, value, q in (("p50", p50, 50), ("p95", p95, 95)):
        _require(isinstance(value, (int, float, np.number)) and not isinstance(value, bool),
                 f"Set `{name}` to a number of milliseconds (replace the `...`).")
        low, high = np.percentile(values, q, method="lower"), np.percentile(values, q, method="higher")
        _require(low - 1e-6 <= float(value) <= high + 1e-6,
                 f"`{name}` is {float(value):.1f} ms, but the {q}th percentile of 'total ms' is between "
                 f"{low:.1f} and {high:.1f} ms. Try frame['total ms'].quantile({q / 100}) "
                 "(not the mean: one slow outlier moves the mean, not the median).")
    _solved(f"half of the images took ≤ {float(p50):.0f} ms and 95 % ≤ {float(p95):.0f} ms. Watch p95, not the "
            "average: it is what the unluckiest users feel.")


# --- 07 reliability -----------------------------------------------------------------------------

def check_no_loss(settings: Settings, topic: str, group_id: str, processed: object) -> None:
    """After a 'crash', every record of ``topic`` was either processed or is still there for ``group_id`` to read."""
    from .clients import make_consumer

    _require(isinstance(processed, list) and processed,
             "`processed` should list the keys of the payments your loop processed before the crash.")
    everything = {(m.key() or b"").decode() for m in read_topic(settings, topic)}
    consumer = make_consumer(settings, group_id, client_id="labkit-exercise-successor")
    consumer.subscribe([topic])
    remaining, deadline, quiet = set(), time.monotonic() + 30, 0.0
    try:
        while time.monotonic() < deadline and quiet < 3.0:  # join the group, then read until quiet
            message = consumer.poll(0.5)
            if message is None or message.error():
                quiet += 0.5 if consumer.assignment() else 0.0
                continue
            quiet = 0.0
            remaining.add((message.key() or b"").decode())
    finally:
        consumer.close()  # commits nothing: enable.auto.commit is off in labkit's consumers
    lost = sorted(everything - set(processed) - remaining)
    _require(not lost,
             f"{len(lost)} payment(s) are lost: {lost[:4]}. They were never processed, yet the group's committed "
             "offsets are past them, so a restarted consumer skips them. With enable.auto.commit=True the "
             "client commits what poll() *returned*, processed or not. Turn it off and commit each record "
             "after processing it: consumer.commit(message=message, asynchronous=False).")
    _solved(f"nothing lost: {len(set(processed))} processed before the crash, {len(remaining)} still waiting "
            "for the next member of the group.")


def check_dead_letter_reason(settings: Settings, request_id: str, reason: object, origin: object) -> None:
    """The learner found the dead letter for ``request_id``: why it failed and where the original record is."""
    from .wire import H_DLQ_ERROR, header_dict

    letters = [m for m in read_topic(settings, settings.dead_letter_topic) if m.key() == request_id.encode()]
    _require(bool(letters), f"No dead letter for {request_id} yet: did the processor receive the bad record?")
    headers = header_dict(letters[-1].headers())
    _require(isinstance(reason, str) and reason == headers[H_DLQ_ERROR],
             f"`reason` should be the dead letter's {H_DLQ_ERROR!r} header, as text. Read the topic with "
             "labkit.read_topic(settings, settings.dead_letter_topic), find the record whose key is the "
             "request id, and decode its headers (labkit.wire.header_dict).")
    expected = (headers["labkit-dlq-topic"], int(headers["labkit-dlq-partition"]), int(headers["labkit-dlq-offset"]))
    _require(isinstance(origin, tuple) and tuple(origin) == expected,
             "`origin` should be (topic, partition, offset) of the original record, from the dead letter's "
             "labkit-dlq-topic, -partition and -offset headers (partition and offset as ints).")
    _solved(f"the record at {expected[0]}[{expected[1]}]@{expected[2]} failed with: {reason[:80].rstrip('.')}. Fix the "
            "producer, then replay it: produce the dead letter's key, value and headers to the requests topic again.")
