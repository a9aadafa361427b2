"""One typed settings object for every labkit process, read from ``LABKIT_*`` variables and CLI flags.

Why one object: the web app, the processor, the notebooks and the CLI must agree on the same
topic names, limits and model, or messages silently go nowhere. Every field below can be set

* as an environment variable, ``LABKIT_`` + the field name in upper case
  (``LABKIT_BOOTSTRAP=kafka:9092``, ``LABKIT_MODEL=test-tiny``), or
* as a CLI flag, ``--`` + the field name with dashes (``--bootstrap kafka:9092``).

CLI flags win over environment variables, which win over the defaults written here.
``labkit config`` prints the values in force.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The model name that selects a small, randomly initialised CLIP of the same code path.
TEST_MODEL = "test-tiny"
#: The Apache Kafka version ``--engine kafka`` runs by default; docker-compose.yml's apache/kafka image is the same.
KAFKA_VERSION = "4.1.1"
#: A model's vectors from which its HNSW index gives way to IVFFlat. labkit bench section j at 200k: HNSW at
#: ef_search 100 recall@10 0.91 (0.995 at 100k), IVFFlat (200 lists, 10 probes) 0.98 at p50 5.5 ms.
IVFFLAT_MIN_ROWS = 200_000


def bootstrap_address(bootstrap: str | None, broker_port: int | str, brokers: int | str = 1) -> str:
    """The address clients connect to: the one given, else every node labkit starts on this machine.

    labkit's brokers listen on consecutive ports from ``broker_port`` (9092, 9093, 9094), and a
    client is given all of them: with one node down it still finds the cluster through another.
    """
    return bootstrap or ",".join(f"localhost:{int(broker_port) + i}" for i in range(int(brokers)))


class Settings(BaseSettings):
    """Everything a labkit process needs to know; see the module docstring for how to set it."""

    model_config = SettingsConfigDict(env_prefix="LABKIT_", extra="ignore", validate_default=True)

    # --- Kafka --------------------------------------------------------------------------------
    bootstrap: str | None = Field(
        None,
        description="Kafka bootstrap servers (HOST:PORT[,HOST:PORT]). Unset: localhost:<broker_port>.",
    )
    engine: Literal["tansu", "kafka"] = Field(
        "tansu",
        description="The broker labkit starts when none answers: 'tansu' (embedded, in memory, starts at once) or "
        "'kafka' (Apache Kafka in KRaft mode, on disk; needs Java 17+). Also how long consumers let the broker hold "
        "an empty fetch: set 'kafka' for any Apache Kafka named with --bootstrap.",
    )
    brokers: int = Field(
        1, ge=1, le=9, description="Nodes of the Apache Kafka cluster labkit starts (engine kafka); Tansu has one."
    )
    broker_port: int = Field(
        9092, description="Port of the broker labkit starts; Apache Kafka's node N listens on broker_port + N - 1."
    )
    broker_host: str = Field("127.0.0.1", description="Address the broker labkit starts listens on.")
    requests_topic: str = Field("image-requests", description="Topic the web app writes uploads to.")
    results_topic: str = Field("image-results", description="Topic processors write CLIP results to.")
    dead_letter_topic: str = Field(
        "image-requests-dlq", description="Topic for records that could not be parsed or decoded."
    )
    embeddings_topic: str = Field(
        "image-embeddings", description="Topic CLIP processors write each image's embedding to (the sink reads it)."
    )
    partitions: int = Field(3, ge=1, description="Partitions per topic: the most processors that can work in parallel.")
    replication_factor: int | None = Field(
        None, ge=1, description="Copies of each partition of labkit's topics. Unset: min(3, brokers in the cluster)."
    )
    task: str = Field(
        "clip",
        pattern=r"^[a-z][a-z0-9_]{0,30}$",
        description="What a processor runs on each image: 'clip' (labels) or 'ocr' (the text in it).",
    )
    tasks: str = Field(
        "clip,ocr",
        pattern=r"^[a-z][a-z0-9_]{0,30}(,[a-z][a-z0-9_]{0,30})*$",
        description="The tasks `labkit up`/`lab` run processors for, comma-separated; each scores every upload.",
    )
    group_prefix: str = Field(
        "labkit",
        description="Each task's processors share the consumer group <prefix>-<task> (labkit-clip, labkit-ocr).",
    )
    session_timeout_ms: int = Field(
        6000, description="How long the group waits for a silent processor before reassigning its work."
    )
    heartbeat_interval_ms: int = Field(500, description="How often a processor tells the group it is alive.")
    max_poll_interval_ms: int = Field(
        10000,
        description="Longest gap between polls before a processor is thrown out of the group; "
        "keep it above the slowest batch.",
    )
    connect_timeout_s: float = Field(8.0, description="How long to wait for a broker before giving up.")
    startup_timeout_s: float = Field(
        120.0,
        ge=0,
        description="How long the web app and processors keep retrying, with backoff, for Kafka "
        "and its topics at start.",
    )

    # --- the Apache Kafka engine --------------------------------------------------------------
    kafka_version: str = Field(
        KAFKA_VERSION,
        pattern=r"^4\.\d+\.\d+$",
        description="Apache Kafka version for engine kafka (fetched once by Maven unless KAFKA_HOME is set).",
    )
    kafka_heap_mb: int = Field(512, ge=128, description="Java heap of each Apache Kafka node, in MB.")
    kafka_dir: Path | None = Field(
        None,
        description="Where the Apache Kafka cluster keeps its data across restarts "
        "(default: <history_dir>/kafka/<brokers>-node-<broker_port>).",
    )
    kafka_cache_dir: Path | None = Field(
        None, description="Where Apache Kafka's jars are kept once fetched (default: ~/.cache/labkit/kafka)."
    )

    # --- CLIP -----------------------------------------------------------------------------------
    model: str = Field("ViT-B-32", description=f"open_clip architecture, or '{TEST_MODEL}' for a small random model.")
    pretrained: str = Field(
        "openai",
        description=f"open_clip pretrained tag (downloaded once, then cached); for {TEST_MODEL}, "
        "seedN: another random model.",
    )
    checkpoint: Path | None = Field(
        None, description="Local weights file for `model`; used instead of downloading `pretrained`."
    )
    model_cache_dir: Path | None = Field(
        None, description="Where downloaded weights are cached (default: the Hugging Face cache)."
    )
    labels_file: Path | None = Field(
        None, description="Text file with one candidate label per line (default: labkit's label set)."
    )
    backend: Literal["auto", "torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8"] = Field(
        "auto", description="How the image tower runs; auto = the fastest that passes the fidelity gate."
    )
    onnx_cache_dir: Path | None = Field(
        None, description="Where exported ONNX image towers are cached (default ~/.cache/labkit/onnx)."
    )
    backend_memory_mb: int = Field(
        2048,
        ge=0,
        description="Most memory `auto` may choose a backend for: the peak resident MB of a process serving it "
        "(measured at start-up; PyTorch backends carry PyTorch and the whole model). 0: no limit.",
    )
    top_k: int = Field(5, ge=1, description="How many labels each result carries.")
    max_batch_size: int = Field(8, ge=1, description="Most images a processor scores in one batch.")
    inference_threads: int = Field(
        0,
        ge=0,
        description="CPU threads one processor uses for its model, CLIP or OCR (0: all cores; `labkit up "
        "--processors N` gives each cores/N).",
    )
    max_batch_wait_ms: int = Field(
        20,
        ge=0,
        description="Longest a busy processor waits to fill a batch before scoring what it has (after a batch of "
        "one image it waits for none).",
    )
    exactly_once: bool = Field(
        False,
        description="Processors write each batch's results and its consumed offsets in one Kafka transaction "
        "(exactly-once; needs Apache Kafka: --engine kafka). Default: at-least-once, commit after acknowledgement.",
    )
    failpoint: str | None = Field(
        None,
        pattern=r"^(after-consume|before-commit):[1-9][0-9]*$",
        description="Chaos testing: 'after-consume:N' or 'before-commit:N' kills the processor process "
        "(SIGKILL) at that step of its Nth batch.",
    )

    # --- Images and the web app -----------------------------------------------------------------
    max_upload_bytes: int = Field(25 * 1024 * 1024, description="Largest upload accepted (HTTP 413 above).")
    max_record_bytes: int = Field(
        900_000,
        description="Largest image record written to Kafka; Apache Kafka's default limit is ~1 MB.",
    )
    max_image_side: int = Field(
        640, ge=224, description="Uploads are shrunk to this longest side before they enter Kafka."
    )
    max_image_pixels: int = Field(
        80_000_000, description="Images with more pixels are refused (decompression-bomb guard)."
    )
    web_host: str = Field("127.0.0.1", description="Address the web app listens on (0.0.0.0 to expose).")
    web_port: int = Field(8080, description="Port of the web app.")
    api_token: SecretStr | None = Field(
        None, description="When set, uploads need `Authorization: Bearer <token>` (set it when the app is exposed)."
    )
    allowed_origins: str = Field(
        "", description="Other web origins (comma-separated) allowed to call the API; empty: same origin only."
    )
    results_cache_size: int = Field(10_000, description="Results each web replica keeps for the REST API.")
    results_replay_s: float = Field(
        600.0,
        ge=0,
        description="At start, a web replica re-reads the results of this many past seconds, so a restart loses none.",
    )
    max_pending_uploads: int = Field(
        500, ge=1, description="Uploads a web replica lets wait for results; beyond it, HTTP 429 with Retry-After."
    )
    jupyter_port: int = Field(8888, description="Port of JupyterLab for `labkit lab`.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    database_url: SecretStr | None = Field(
        None,
        description="PostgreSQL that keeps the history (postgresql://user:pass@host/db); default: an embedded "
        "PostgreSQL with pgvector in history_dir.",
    )
    history_dir: Path = Field(
        Path("~/.local/share/labkit").expanduser(),
        description="labkit's data folder: the history's embedded PostgreSQL (<history_dir>/postgres) and the "
        "Apache Kafka cluster's data (<history_dir>/kafka).",
    )
    ivfflat_min_rows: int = Field(
        IVFFLAT_MIN_ROWS,
        ge=1000,
        description="Vectors of one model from which the history's sink indexes them with IVFFlat rather than HNSW "
        "(better recall at 1M; rebuilt as they grow 4×). See `labkit bench` section j.",
    )
    log_dir: Path | None = Field(
        None,
        description="Folder where `labkit up` / `labkit lab` also write each service's output, one capped file "
        "per service (default: labkit-logs-<uid>-<web port> in the temp folder; notebooks find it there).",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_tansu(self) -> "Settings":
        if self.engine == "tansu" and self.brokers > 1:
            raise ValueError(
                f"Tansu runs one node; for a cluster of {self.brokers} use the Apache Kafka engine "
                f"(--engine kafka --brokers {self.brokers})"
            )
        return self

    @property
    def bootstrap_servers(self) -> str:
        """The Kafka address clients connect to."""
        return bootstrap_address(self.bootstrap, self.broker_port, self.brokers)

    @property
    def kafka_data_dir(self) -> Path:
        """The Apache Kafka cluster's data: ``kafka_dir``, else a folder per size and port in ``history_dir``."""
        return self.kafka_dir or self.history_dir / "kafka" / f"{self.brokers}-node-{self.broker_port}"

    @property
    def group_id(self) -> str:
        """The consumer group of this settings' task on the requests topic: ``<group_prefix>-<task>``."""
        return f"{self.group_prefix}-{self.task}"

    @property
    def enabled_tasks(self) -> tuple[str, ...]:
        """``tasks`` as a tuple, in order, without repeats."""
        return tuple(dict.fromkeys(self.tasks.split(",")))

    def for_task(self, task: str) -> "Settings":
        """The same settings for another task (its own consumer group)."""
        return self.model_copy(update={"task": task})

    @property
    def names_its_broker(self) -> bool:
        """True when a Kafka address was given (flag or variable): labkit then never starts a broker instead."""
        return self.bootstrap is not None

    @property
    def service_log_dir(self) -> Path:
        """The services' log folder: ``log_dir``, else a folder named after this user and the web port.

        The web port tells one running stack from another on a machine, and a notebook kernel
        started by ``labkit lab`` has the same ``LABKIT_*`` variables, so it finds the same folder.
        """
        if self.log_dir is not None:
            return self.log_dir
        uid = os.getuid() if hasattr(os, "getuid") else 0
        return Path(tempfile.gettempdir()) / f"labkit-logs-{uid}-{self.web_port}"

    @property
    def uses_test_model(self) -> bool:
        """True when the random test model is selected (its labels mean nothing)."""
        return self.model == TEST_MODEL

    def to_env(self, reveal_secrets: bool = True) -> dict[str, str]:
        """These settings as ``LABKIT_*`` variables, so child processes see the same values.

        ``reveal_secrets=False`` prints ``**********`` for secrets (for anything a person reads).
        """
        env = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr) and reveal_secrets:
                value = value.get_secret_value()  # children need the value itself; never printed
            if value is not None:
                env[f"LABKIT_{name.upper()}"] = str(value)
        return env  # an unset bootstrap stays unset: the child works out the same default address


#: Which settings belong to which part of the system (for ``--help``: each command lists only the
#: groups it uses; ``labkit config --help`` lists them all).
SETTING_GROUPS: dict[str, tuple[str, ...]] = {
    "Kafka connection": (
        "bootstrap",
        "engine",
        "brokers",
        "broker_port",
        "broker_host",
        "connect_timeout_s",
        "startup_timeout_s",
    ),
    "Apache Kafka engine": ("kafka_version", "kafka_heap_mb", "kafka_dir", "kafka_cache_dir"),
    "Kafka topics": (
        "requests_topic",
        "results_topic",
        "dead_letter_topic",
        "embeddings_topic",
        "partitions",
        "replication_factor",
    ),
    "consumer group": (
        "task",
        "tasks",
        "group_prefix",
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "max_poll_interval_ms",
    ),
    "CLIP model": (
        "model",
        "pretrained",
        "checkpoint",
        "model_cache_dir",
        "labels_file",
        "backend",
        "backend_memory_mb",
        "onnx_cache_dir",
        "top_k",
        "inference_threads",
    ),
    "processor batches": ("max_batch_size", "max_batch_wait_ms", "exactly_once", "failpoint"),
    "image limits": ("max_upload_bytes", "max_record_bytes", "max_image_side", "max_image_pixels"),
    "web app": (
        "web_host",
        "web_port",
        "api_token",
        "allowed_origins",
        "results_cache_size",
        "results_replay_s",
        "max_pending_uploads",
    ),
    "history": ("database_url", "history_dir", "ivfflat_min_rows"),
    "lab": ("jupyter_port",),
    "logging": ("log_level", "log_dir"),
}


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` (e.g. parsed CLI flags) on top.

    ``None`` overrides are ignored, so an unset CLI flag never hides an environment variable.
    """
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
