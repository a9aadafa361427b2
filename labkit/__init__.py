"""labkit: real-time CLIP image analysis with Kafka — the lab and the system it teaches.

The names below are the public API that notebooks and services use; the modules behind them
each hold one concept:

    config          Settings (LABKIT_* variables and CLI flags), grouped by the part that reads them
    errors          the errors labkit raises on purpose, each saying what to do next
    kafka           the Kafka core: the engines labkit starts (Tansu in memory, Apache Kafka in KRaft mode)
    kafka_config    librdkafka settings for producers, consumers and admin clients, each with its reason
    partitioning    which partition a key lands in: librdkafka's CRC32 vs Java's murmur2
    admin           topics: create, list, describe with offsets and lag, read back
    console         `labkit topics` at a terminal: tail a topic readably, measure a consumer's throughput
    wire            the record formats: request, result, and their headers
    dead_letters    a record no task can use: parked unchanged, with headers saying why and where it failed
    versions        schema versions: MAJOR.MINOR in the labkit-schema header, and what a reader accepts
    serde           serializers and deserializers: a result as JSON bytes and back, checked against its schema
    embeddings      the image-embedding record: one CLIP vector per request, float16, keyed by request id
    images          upload checks, shrinking to fit a Kafka record, decoding
    clip            CLIP: one scorer base, a PyTorch and an ONNX Runtime adapter, the fidelity gate
    tasks           what a processor runs on each image: a registry of tasks (clip, ocr) over one shared loop
    batch           one micro-batch: decode, run the task, results and dead letters (no consumer in it)
    checkpoint      produce, wait for the broker's acknowledgement, commit, or rewind with a fresh producer
    processor       the consumer-group member that loops: poll, batch, checkpoint
    request_sender  produce an upload as an image request and report its acknowledgement
    results_listener  read every result outside any group, and keep them by request id
    lab_client      LabClient, the blocking helper notebooks use
    history         the Kafka → PostgreSQL sink (its own consumer group) and search: text, image, OCR words, duplicates
    monitor         lag in records and in seconds, and a JSON snapshot of the pipeline, read from the broker alone
    web             the FastAPI app and its page
    widgets         ipywidgets for the notebooks
    exercises       the checks behind the notebook exercises
    samples         labelled sample photos
    bench           `labkit bench` and `labkit load`: the model alone vs the whole pipeline
    chaos           a proxy that cuts the network or loses a request, to stage failures
    supervisor      restarting a part that dies, with backoff (as Compose does)
    stack           running all of it as child processes (labkit up / lab)
    cli             the labkit command

Private helpers: ``_loop`` (one background thread repeating a step), ``_process`` (child
processes and stop signals), ``_logging`` (how a command logs), ``_cli_settings`` (the
``--setting`` flags of each command).
"""

from importlib import import_module
from importlib.util import find_spec

from ._net import free_port
from .admin import create_topics, describe_topics, group_assignments, group_members, read_topic, wait_for_broker
from .config import TEST_MODEL, Settings, load_settings
from .errors import BadImage, BrokerUnavailable, LabkitError, ModelUnavailable, TopicMissing, WireFormatError
from .kafka.engines import ApacheKafka, Broker, TansuBroker, start_broker
from .kafka.engines.control import ClusterControl
from .lab_client import LabClient
from .stack import Stack, ensure_pipeline
from .wire import ImageRequest, LabelScore, ScoreResult

__version__ = "0.1.0"

# The public API, in one list. None of it loads PyTorch (tests/test_torch_free.py checks).
__all__ = [
    "ApacheKafka",
    "BadImage",
    "Broker",
    "BrokerUnavailable",
    "ClusterControl",
    "ImageRequest",
    "LabClient",
    "LabelScore",
    "LabkitError",
    "ModelUnavailable",
    "ScoreResult",
    "Settings",
    "Stack",
    "TEST_MODEL",
    "TansuBroker",
    "TopicMissing",
    "WireFormatError",
    "create_topics",
    "describe_topics",
    "ensure_pipeline",
    "free_port",
    "group_assignments",
    "group_members",
    "load_settings",
    "read_topic",
    "start_broker",
    "wait_for_broker",
]


def __getattr__(name: str):
    """``labkit.exercises`` (or any other submodule) works after a plain ``import labkit``: imported on first use."""
    if not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
