"""Writes the lab's notebooks from the cell lists below (run: python notebooks/build_notebooks.py).

Keeping the source here means notebook diffs are reviewable Python, and no stale outputs are
ever committed: the .ipynb files are written without outputs.

Exercises have one source of truth, an :class:`Exercise` below: its template goes into the
notebooks learners open (``notebooks/*.ipynb``), its reference solution into
``notebooks/solutions/*.ipynb``, which CI runs under nbval. ``tests/test_exercises.py`` runs each
check against the template (must fail, with feedback) and the solution (must pass).
"""

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent


@dataclass(frozen=True)
class Exercise:
    """A template the learner completes, its reference solution, and the check that judges it.

    ``given`` is the code earlier cells of the notebook have run (variables the exercise uses);
    the tests run it first, against their own broker.
    """

    title: str
    instructions: str
    given: str
    template: str
    solution: str
    check: str

    def cells(self, solved: bool) -> list:
        return [new_markdown_cell(f"### ✍️ Exercise: {self.title}\n\n{self.instructions}"),
                new_code_cell(self.solution if solved else self.template),
                new_code_cell(self.check)]


TOPIC_GIVEN = """import labkit
from confluent_kafka.admin import NewTopic
from labkit.clients import make_admin, make_producer
settings = labkit.load_settings()
admin = make_admin(settings)
producer = make_producer(settings)"""

EX_CREATE_TOPIC = Exercise(
    "create a topic",
    "Create a topic called `my-first-topic` with **4 partitions** (replication factor 1: we have one "
    "broker). Replace each `...`; `create_topics` returns one future per topic — call `.result()` on it "
    "to wait for the broker's answer.",
    TOPIC_GIVEN,
    """topic = "my-first-topic"
partitions = ...   # how many?
# create the topic here with admin.create_topics([NewTopic(...)]) and wait for the answer""",
    """topic = "my-first-topic"
futures = admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
for future in futures.values():
    try:
        future.result()
    except Exception as error:  # TOPIC_ALREADY_EXISTS when you run this twice
        print(error)""",
    "labkit.exercises.check_topic_created(settings, topic, partitions=4)",
)

EX_PREDICT_PARTITION = Exercise(
    "where does a key go?",
    "Records with the same key always go to the same partition. Find out which partition of "
    "`my-first-topic` the key `\"cat\"` lands in — produce one record with that key and read the "
    "partition from its delivery report — and set `predicted_partition`. The check then produces "
    "`\"cat\"` again and compares.",
    TOPIC_GIVEN + """
topic = "my-first-topic"
for future in admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)]).values():
    try:
        future.result()
    except Exception:
        pass""",
    """predicted_partition = ...""",
    """landed = []
producer.produce(topic, key=b"cat", value=b"meow",
                 on_delivery=lambda error, message: landed.append(message.partition()))
producer.flush()
predicted_partition = landed[0]
predicted_partition""",
    'labkit.exercises.check_partition_prediction(settings, topic, "cat", predicted_partition)',
)

EX_IDEMPOTENT = Exercise(
    "an idempotent producer",
    "Write the configuration of a producer that cannot write duplicates when it retries: it needs "
    "`bootstrap.servers` and idempotence switched on (librdkafka's default is off).",
    TOPIC_GIVEN,
    """config = {
    "bootstrap.servers": ...,
}""",
    """config = {
    "bootstrap.servers": settings.bootstrap_servers,
    "enable.idempotence": True,   # implies acks=all and keeps order per partition
}""",
    "labkit.exercises.check_producer_config(config)",
)

EX_SEND_RECORDS = Exercise(
    "send ten keyed records with a header",
    "Send **10** records to the topic `clicks`, keyed `user-0` … `user-9`, "
    "each with a header `source` (any value). Remember: `produce()` only queues a record.",
    TOPIC_GIVEN,
    """topic = "clicks"
labkit.create_topics(settings, [topic])   # idempotent: safe to run again
for i in range(10):
    pass   # produce record i: key f"user-{i}", value b"click", a "source" header""",
    """topic = "clicks"
labkit.create_topics(settings, [topic])
for i in range(10):
    producer.produce(topic, key=f"user-{i}".encode(), value=b"click", headers={"source": b"notebook"})
producer.flush()""",
    'labkit.exercises.check_records_sent(settings, "clicks", 10, header="source", keys=[f"user-{i}" for i in range(10)])',
)

ORDERS_GIVEN = TOPIC_GIVEN + """
import time
from labkit.clients import make_consumer
labkit.create_topics(settings, ["orders"])
if sum(r.high for r in labkit.describe_topics(settings, ["orders"])) == 0:
    for i in range(6):
        producer.produce("orders", key=f"order-{i}".encode(), value=b"1 pizza")
        producer.flush()   # one record per request: end offsets count records on every broker"""

def _orders_loop(group: str, reset: str | None, wait_s: int, stop_when: str, body: str, before_close: str = "") -> str:
    """A poll loop over `orders` (the exercises of notebook 03 differ only in these parts)."""
    reset_arg = f', **{{"auto.offset.reset": "{reset}"}}' if reset else ""
    return f"""consumer = make_consumer(settings, "{group}"{reset_arg})
consumer.subscribe(["orders"])
{body.split(chr(10))[0]}
deadline = time.time() + {wait_s}
while {stop_when} and time.time() < deadline:
    message = consumer.poll(0.5)
    if message is not None and not message.error():
        {body.split(chr(10))[1]}
{before_close}consumer.close()"""


_READ = ("received = []", "received.append(message)")
EX_READ_FROM_START = Exercise(
    "read everything that is already there",
    "The topic `orders` already holds 6 records. This consumer, in a brand-new group, reads none "
    "of them. Fix it so `received` ends up with all 6.",
    ORDERS_GIVEN,
    _orders_loop("exercise-03-read", "latest", 8, "len(received) < 6", "\n".join(_READ)) + "\nlen(received)",
    _orders_loop("exercise-03-read", "earliest", 30, "len(received) < 6", "\n".join(_READ)) + "\nlen(received)",
    'labkit.exercises.check_consumed_everything(settings, "orders", received)',
)

_PROCESS = ("done = 0", 'done += 1   # "process" the order')
EX_COMMIT = Exercise(
    "commit what you processed",
    "labkit's consumers do not auto-commit (a crash would lose records auto-commit already "
    "stored). This loop processes all 6 orders but the group's lag never drops. Make it commit, "
    "so `labkit topics describe` would show lag 0 for group `exercise-03-commit`.",
    ORDERS_GIVEN,
    _orders_loop("exercise-03-commit", None, 30, "done < 6", "\n".join(_PROCESS)),
    _orders_loop("exercise-03-commit", None, 30, "done < 6", "\n".join(_PROCESS),
                 "consumer.commit(asynchronous=False)   # the next offsets to read, per partition\n"),
    'labkit.exercises.check_group_caught_up(settings, "orders", "exercise-03-commit", expected=6)',
)

EXERCISES = {"01_topics_and_partitions": [EX_CREATE_TOPIC, EX_PREDICT_PARTITION],
             "02_producers_and_serialization": [EX_IDEMPOTENT, EX_SEND_RECORDS],
             "03_consumers_and_offsets": [EX_READ_FROM_START, EX_COMMIT]}

QUICKSTART = [
    new_markdown_cell("""# 00 · Quickstart: one photo through Kafka and CLIP

In this notebook you send a photo through the same pipeline the web app uses and read the
result as a table. Nothing here is notebook-only code: every call is the `labkit` package
that the services run.

```
 you ──► image-requests ──► processor (CLIP) ──► image-results ──► you
        (Kafka topic)        consumer group        (Kafka topic)
```

1. **`ensure_pipeline()`** finds a running Kafka broker and processor (for example the ones
   `labkit lab` started) or starts what is missing.
2. **`LabClient`** produces your image to the `image-requests` topic, keyed by a new request id,
   and listens on `image-results` for the answer with the same id.
"""),
    new_code_cell("""import labkit

settings = labkit.load_settings()          # LABKIT_* environment variables, or the defaults
pipeline = labkit.ensure_pipeline(settings)
print("Kafka:", settings.bootstrap_servers)
print("started here:", [c.name for c in pipeline.children] + (["broker"] if pipeline.broker else []) or "nothing (reused)")"""),
    new_markdown_cell("""## Send one photo

`classify` = `submit` (produce the record and wait for the broker's acknowledgement) +
`wait` (block until the result with the same request id arrives)."""),
    new_code_cell("""from IPython.display import Image, display
from labkit.samples import sample_photos

photos = sample_photos()                   # {label: path} of the photos that ship with labkit
lab = labkit.LabClient(settings)
display(Image(photos["kitten"], width=160))
result = lab.classify(photos["kitten"])
print(result.status, "by", result.processor, "in", result.timings_ms.total, "ms")
assert result.status == "ok" and len(result.labels) == settings.top_k"""),
    new_markdown_cell("""The result is JSON on the `image-results` topic. Its `labels` are the top
candidates with softmax probabilities, like *"Photo of a kitten: 89.5%"*. As a pandas table:"""),
    new_code_cell("""import pandas as pd

top = pd.DataFrame([s.model_dump() for s in result.labels])
top["percent"] = (top["score"] * 100).round(1)
assert top["score"].is_monotonic_decreasing
top"""),
    new_code_cell("""if settings.uses_test_model:
    print("This is the random test model (LABKIT_MODEL=test-tiny): its labels are meaningless noise.\\n"
          "With real weights (LABKIT_MODEL=ViT-B-32, the default) the kitten scores 'kitten' or 'cat'.")
else:
    print("Model:", result.model)"""),
    new_markdown_cell("""## Several photos, and where the time goes

Each request is independent: they are spread over the topic's partitions by key and the
processor scores them in small batches. `timings_ms` tells you how long each one waited in
Kafka (`queued`), was decoded, and was run through CLIP."""),
    new_code_cell("""for name in ["dog", "pizza", "pyramids"]:
    lab.classify(photos[name])
frame = lab.results_frame()
assert len(frame) == 4 and (frame["status"] == "ok").all()  # the kitten + these three
frame[["file", "top label", "probability", "total ms", "inference ms"]]"""),
    new_markdown_cell("""## Your own labels

CLIP is *zero-shot*: the candidate labels are just text, so you can ask your own question.
The probabilities are relative to the candidates you give (they always sum to 100 %)."""),
    new_code_cell("""own = lab.classify(photos["dog"], labels=["dog", "cat", "teapot", "a bowl of soup"])
assert sorted(s.label for s in own.labels) == ["a bowl of soup", "cat", "dog", "teapot"]
pd.DataFrame([s.model_dump() for s in own.labels])"""),
    new_markdown_cell("""## Try it yourself

Upload your own photos with the widget below: each is sent to Kafka at once and the table
fills in as results arrive (it refreshes from a background thread, so the notebook stays
usable). Then open the web app (`labkit up`, http://localhost:8080) and see the same pipeline
behind a browser."""),
    new_code_cell("""from labkit.widgets import LiveResults

live = LiveResults(lab)
live"""),
    new_markdown_cell("When you are done, stop what this notebook started (a broker or processor that `labkit lab` runs keeps running)."),
    new_code_cell("""live.close()
lab.close()
pipeline.stop()"""),
]


def topics_and_partitions(solved: bool) -> list:
    return [
        new_markdown_cell("""# 01 · Topics and partitions

A **topic** is a named, append-only log of records. It is split into **partitions**: each
partition is its own ordered log on a broker, and every record in it gets an increasing
**offset** (0, 1, 2, …). Partitions are the unit of parallelism: one consumer group can have at
most as many busy members as the topic has partitions.

```
image-requests   partition 0: [0][1][2][3][4] ← new records are appended here
                 partition 1: [0][1][2]
                 partition 2: [0][1][2][3]
```"""),
        new_code_cell("""import labkit
from confluent_kafka.admin import NewTopic
from labkit.clients import make_admin, make_producer

settings = labkit.load_settings()
pipeline = labkit.ensure_pipeline(settings, processor=False)   # a broker is all this notebook needs
admin = make_admin(settings)
producer = make_producer(settings)
print("Kafka at", settings.bootstrap_servers)"""),
        new_markdown_cell("""## The pipeline's topics

`labkit topics describe` (or `labkit.describe_topics`) shows every partition: its *low* and
*high* offsets (where the log starts and ends) and how far the processors' consumer group has
read (*committed*) — the difference is the **lag**."""),
        new_code_cell("""import pandas as pd

rows = labkit.describe_topics(settings)
table = pd.DataFrame([vars(r) | {"lag": r.lag} for r in rows])
assert set(table["topic"]) == {settings.requests_topic, settings.results_topic, settings.dead_letter_topic}
table"""),
        new_markdown_cell("""## Keys decide partitions

A producer picks the partition by hashing the record's **key**: the same key always goes to the
same partition, so records of one key stay in order. No key → records are spread over the
partitions. (librdkafka's default hash differs from Java's: set `partitioner=murmur2_random` to
match Java producers — notebook 02.)"""),
        new_code_cell("""labkit.create_topics(settings, ["keys-demo"])   # 3 partitions, like the pipeline's topics
landed = {}
for key in ["cat", "dog", "cat", "teapot", "cat", "dog"]:
    producer.produce("keys-demo", key=key.encode(), value=b"x",
                     on_delivery=lambda error, message: landed.setdefault(message.key().decode(), set()).add(message.partition()))
producer.flush()
assert all(len(partitions) == 1 for partitions in landed.values())   # one key, one partition
landed"""),
        new_markdown_cell("We created `keys-demo` before writing to it. The embedded broker would create it on first use, but Apache Kafka clusters usually refuse (`auto.create.topics.enable=false`), and a consumer never creates topics: labkit always creates its topics on purpose."),
        *EX_CREATE_TOPIC.cells(solved),
        *EX_PREDICT_PARTITION.cells(solved),
        new_code_cell("pipeline.stop()   # stops only what this notebook started"),
    ]


def producers_and_serialization(solved: bool) -> list:
    return [
        new_markdown_cell("""# 02 · Producers and serialization

A producer turns your objects into bytes (serialization), picks a partition from the key,
batches records, and sends them. Three questions decide how safe that is:

* **acks** — when does the broker say "got it"? `acks=all`: once every in-sync replica has it.
* **idempotence** — if an acknowledgement is lost and the producer retries, is the record
  written twice? With `enable.idempotence=True` the broker drops the duplicate.
* **delivery reports** — the producer tells you, per record, where it landed or why it failed,
  but only when you call `poll()` or `flush()`."""),
        new_code_cell("""import labkit
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic
from labkit.clients import make_admin, make_producer, producer_config

settings = labkit.load_settings()
pipeline = labkit.ensure_pipeline(settings, processor=False)
admin = make_admin(settings)
producer = make_producer(settings)
producer_config(settings)   # labkit's producer settings, each explained in labkit/clients.py"""),
        new_markdown_cell("""## Trap: a producer that never flushes

`produce()` only puts the record in a memory buffer and returns at once. If the program ends
before the buffer is sent — no `flush()` — the record is simply gone."""),
        new_code_cell("""labkit.create_topics(settings, ["trap-no-flush"])
lazy = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 10_000})
lazy.produce("trap-no-flush", value=b"will this arrive?")
print("still in the buffer:", len(lazy), "record(s)")
del lazy   # the program 'ends' here without flush(): the record never reaches Kafka"""),
        new_code_cell("""fixed = Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 10_000})
reports = []
fixed.produce("trap-no-flush", value=b"this one arrives", on_delivery=lambda e, m: reports.append((e, m.offset())))
fixed.flush()   # sends everything and runs the delivery reports
assert reports and reports[0][0] is None
reports"""),
        new_markdown_cell("""## labkit's wire format

An image request is the image bytes as the value, the request id as the key, and metadata as
**headers** — like HTTP. The processor reads it back with `ImageRequest.from_record`."""),
        new_code_cell("""from labkit.samples import sample_photos
from labkit.wire import ImageRequest

request = ImageRequest(id="demo-1", image=sample_photos()["kitten"].read_bytes(), content_type="image/jpeg")
request.headers()"""),
        *EX_IDEMPOTENT.cells(solved),
        *EX_SEND_RECORDS.cells(solved),
        new_code_cell("pipeline.stop()"),
    ]


def consumers_and_offsets(solved: bool) -> list:
    return [
        new_markdown_cell("""# 03 · Consumers and offsets

A consumer **polls**: it asks the broker for records after its current position, one
partition at a time. Its position in each partition is an **offset**. A consumer *group*
remembers how far it got by **committing** offsets to Kafka — "next time, start at offset N".

* new group, nothing committed → start where `auto.offset.reset` says (`earliest` / `latest`);
* committed too early (before processing) → a crash loses records;
* committed too late (or never) → records are processed again after a restart (at-least-once)."""),
        new_code_cell("""import time

import labkit
from labkit.clients import make_consumer, make_producer

settings = labkit.load_settings()
pipeline = labkit.ensure_pipeline(settings, processor=False)
producer = make_producer(settings)
labkit.create_topics(settings, ["orders"])
if sum(r.high for r in labkit.describe_topics(settings, ["orders"])) == 0:
    for i in range(6):
        producer.produce("orders", key=f"order-{i}".encode(), value=b"1 pizza")
        producer.flush()
labkit.describe_topics(settings, ["orders"], group_id="nobody-yet")"""),
        new_markdown_cell("""## Seek and replay

Offsets make Kafka a *log*, not a queue: reading does not delete. `assign` a partition at any
offset and read it again — this is how you reprocess after a bug fix."""),
        new_code_cell("""from confluent_kafka import TopicPartition

replay = make_consumer(settings)   # no group work: assign() picks partitions and offsets directly
replay.assign([TopicPartition("orders", p, 0) for p in range(3)])
seen = []
deadline = time.time() + 10
while len(seen) < 6 and time.time() < deadline:
    message = replay.poll(0.5)
    if message is not None and not message.error():
        seen.append((message.partition(), message.offset(), message.key().decode()))
replay.close()
assert len(seen) == 6
sorted(seen)"""),
        *EX_READ_FROM_START.cells(solved),
        *EX_COMMIT.cells(solved),
        new_code_cell("pipeline.stop()"),
    ]


def write(path: Path, cells: list) -> None:
    for index, cell in enumerate(cells):
        cell["id"] = f"cell-{index:02d}"  # stable ids: rebuilding changes nothing that did not change
    notebook = new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    path.parent.mkdir(exist_ok=True)
    nbformat.write(notebook, path)


#: name → cells(solved); 00 has no exercises.
NOTEBOOKS = {
    "00_quickstart": lambda solved: QUICKSTART,
    "01_topics_and_partitions": topics_and_partitions,
    "02_producers_and_serialization": producers_and_serialization,
    "03_consumers_and_offsets": consumers_and_offsets,
}


def build(root: Path = HERE) -> None:
    """Templates in ``root`` (what learners open), solved copies in ``root/solutions`` (what CI runs)."""
    for name, cells in NOTEBOOKS.items():
        write(root / f"{name}.ipynb", cells(False))
        write(root / "solutions" / f"{name}.ipynb", cells(True))  # what CI runs under nbval


if __name__ == "__main__":
    build()
