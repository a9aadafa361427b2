"""labkit: real-time CLIP image analysis with Kafka — the lab and the system it teaches.

The names below are the public API that notebooks and services use; the modules behind them
each hold one concept:

    config     Settings (LABKIT_* variables and CLI flags)
    broker     the embedded Kafka-protocol broker (Tansu)
    clients    librdkafka settings for producers, consumers and admin clients
    partitioning  which partition a key lands in: librdkafka's CRC32 vs Java's murmur2
    admin      topics: create, list, describe with offsets and lag, read back
    wire       the record formats: request, result, dead letter
    images     upload checks, shrinking to fit a Kafka record, decoding
    clip       CLIP model loading and zero-shot scoring
    processor  the consumer-group member that scores images
    gateway    sending requests and listening for results (web app and notebooks)
    client     LabClient, the blocking helper notebooks use
    web        the FastAPI app and its page
    widgets    ipywidgets for the notebooks
    exercises  the checks behind the notebook exercises
    samples    labelled sample photos
    bench      `labkit bench`: the model alone vs the whole pipeline
    chaos      a proxy that cuts the network or loses a request, to stage failures
    supervisor restarting a part that dies, with backoff (as Compose does)
    stack      running all of it as child processes (labkit up / lab)
    cli        the labkit command
"""

from importlib import import_module
from typing import TYPE_CHECKING

# Imported on first use, so `import labkit` (and every CLI command) does not load torch
# unless it needs CLIP.
_EXPORTS = {
    "create_topics": "admin", "describe_topics": "admin", "group_assignments": "admin", "group_members": "admin",
    "read_topic": "admin", "wait_for_broker": "admin",
    "EmbeddedBroker": "broker", "free_port": "broker",
    "LabClient": "client",
    "TEST_MODEL": "config", "Settings": "config", "load_settings": "config",
    "BadImage": "errors", "BrokerUnavailable": "errors", "LabkitError": "errors", "ModelUnavailable": "errors",
    "TopicMissing": "errors", "WireFormatError": "errors",
    "Stack": "stack", "ensure_pipeline": "stack",
    "ImageRequest": "wire", "LabelScore": "wire", "ScoreResult": "wire",
}


_SUBMODULES = {"admin", "bench", "broker", "chaos", "cli", "client", "clients", "clip", "config", "errors", "exercises",
               "gateway", "images", "partitioning", "processor", "samples", "stack", "supervisor", "web",
               "widgets", "wire"}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _SUBMODULES:  # `labkit.exercises.check_...` works after a plain `import labkit`
        return import_module(f".{name}", __name__)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


if TYPE_CHECKING:  # for editors and type checkers
    from .admin import create_topics, describe_topics, group_assignments, group_members, read_topic  # noqa: F401
    from .admin import wait_for_broker  # noqa: F401
    from .broker import EmbeddedBroker, free_port  # noqa: F401
    from .client import LabClient  # noqa: F401
    from .config import TEST_MODEL, Settings, load_settings  # noqa: F401
    from .errors import BadImage, BrokerUnavailable, LabkitError, ModelUnavailable, TopicMissing  # noqa: F401
    from .errors import WireFormatError  # noqa: F401
    from .stack import Stack, ensure_pipeline  # noqa: F401
    from .wire import ImageRequest, LabelScore, ScoreResult  # noqa: F401

__version__ = "0.1.0"

__all__ = sorted(_EXPORTS)
