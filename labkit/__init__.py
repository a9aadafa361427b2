"""labkit: real-time CLIP image analysis with Kafka — the lab and the system it teaches.

The names below are the public API that notebooks and services use; the modules behind them
each hold one concept:

    config          Settings (LABKIT_* variables and CLI flags), grouped by the part that reads them
    errors          the errors labkit raises on purpose, each saying what to do next
    kafka           the Kafka core: engines, client settings, admin, offsets, producer, checkpoint, console
    records         the record formats: versions, request and result, serde, embeddings, dead letters
    images          upload checks, shrinking to fit a Kafka record, decoding
    clip            CLIP: one scorer base, a PyTorch and an ONNX Runtime adapter, the fidelity gate
    tasks           what a processor runs on each image: a registry of tasks (clip, ocr), each whole
    batch           one micro-batch: decode, run the task, results and dead letters (no consumer in it)
    processor       the consumer-group member that loops: poll, batch, checkpoint
    request_sender  produce an upload as an image request and report its acknowledgement
    results_listener  read every result outside any group, and keep them by request id
    lab_client      LabClient, the blocking helper notebooks use
    history         the Kafka → PostgreSQL sink (its own consumer group) and search
    web             the FastAPI app and its page
    ops             operations: supervisor, stack (labkit up / lab), monitor, chaos
    widgets         ipywidgets for the notebooks
    exercises       the checks behind the notebook exercises
    samples         labelled sample photos
    bench           `labkit bench` and `labkit load`: the model alone vs the whole pipeline
    cli             the labkit command

Private helpers: ``_loop`` (one background thread repeating a step), ``_process`` (child
processes and stop signals), ``_net`` (TCP ports on this machine: taken or free), ``_logging``
(how a command logs), ``_cli_settings`` (the ``--setting`` flags of each command).
"""

from importlib import import_module
from importlib.util import find_spec

from ._net import free_port
from .config import TEST_MODEL, Settings, load_settings
from .errors import BadImage, BrokerUnavailable, LabkitError, ModelUnavailable, TopicMissing, WireFormatError
from .kafka.admin import create_topics, describe_topics, group_assignments, group_members, read_topic, wait_for_broker
from .kafka.engines import ApacheKafka, Broker, TansuBroker, start_broker
from .kafka.engines.control import ClusterControl
from .kafka.engines.lesson_cluster import LessonCluster, apache_kafka_for
from .lab_client import LabClient
from .ops.stack import Stack, ensure_pipeline
from .records.wire import ImageRequest, LabelScore, ScoreResult

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
    "LessonCluster",
    "LabkitError",
    "ModelUnavailable",
    "ScoreResult",
    "Settings",
    "Stack",
    "TEST_MODEL",
    "TansuBroker",
    "TopicMissing",
    "WireFormatError",
    "apache_kafka_for",
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
    """Any submodule (``labkit.exercises``…) works after a plain ``import labkit``: imported on first use."""
    if not name.startswith("_") and find_spec(f"{__name__}.{name}") is not None:
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")
