"""The image-embedding record: one CLIP image vector per request, float16, keyed by request id.

Embedding (topic ``image-embeddings``)
    key      the request id, like its request and its results.
    value    the unit-length image embedding as little-endian float16, ``dim`` × 2 bytes
             (1 KB for ViT-B/32's 512 dimensions).
    headers  ``labkit-schema`` (``1.0``), ``labkit-model`` (the model that made it, e.g.
             ``ViT-B-32/openai``), ``labkit-dim`` and ``labkit-dtype`` (``float16``).

Why a topic of its own and not a field of the result: every web replica and every browser
reads every result, and none of them needs a vector; the sink (``labkit.history``) does. Why
float16: a unit vector's cosine changes by about 1e-3 at most, far below the gap between
neighbours that search ranks on; it halves the bytes of float32, and it is exactly what
pgvector's ``halfvec`` stores. (int8 would halve it again but needs a scale per vector and has
no pgvector type.) Why the model header: vectors of two models live in different spaces, so
a reader must never compare them — after a model change, the kept requests are embedded again
under the new model's name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import WireFormatError
from .versions import H_SCHEMA, SCHEMA_VERSION, SchemaVersion, schema_of
from .wire import Headers, ProduceHeaders

H_MODEL = "labkit-model"
H_DIM = "labkit-dim"
H_DTYPE = "labkit-dtype"

EMBEDDING_SCHEMA = SchemaVersion(SCHEMA_VERSION, 0)
DTYPE = "float16"


@dataclass(frozen=True)
class ImageEmbedding:
    """One request's image embedding, as a unit-length float32 vector, and the model that made it."""

    request_id: str
    model: str
    vector: np.ndarray


def encode_embedding(vector: np.ndarray, model: str) -> tuple[bytes, ProduceHeaders]:
    """A unit vector → the record's value (float16 bytes) and headers."""
    values = np.asarray(vector, dtype="<f2").ravel()
    return values.tobytes(), [
        (H_SCHEMA, str(EMBEDDING_SCHEMA).encode()),
        (H_MODEL, model.encode()),
        (H_DIM, str(values.size).encode()),
        (H_DTYPE, DTYPE.encode()),
    ]


def decode_embedding(key: bytes | None, value: bytes | None, headers: Headers | None) -> ImageEmbedding:
    """An embedding record → :class:`ImageEmbedding`, or :class:`WireFormatError` saying what is wrong."""
    named = {name: (raw or b"").decode("utf-8", "replace") for name, raw in headers or ()}
    version = schema_of(headers, EMBEDDING_SCHEMA)
    if not EMBEDDING_SCHEMA.reads(version):
        raise WireFormatError(
            f"embedding schema {version} is not readable by this labkit ({EMBEDDING_SCHEMA}); upgrade"
        )
    if not key:
        raise WireFormatError("embedding record has no key: the key must be the request id")
    if named.get(H_DTYPE, DTYPE) != DTYPE:
        raise WireFormatError(f"embedding dtype {named[H_DTYPE]!r} is not {DTYPE}")
    if not named.get(H_MODEL):
        raise WireFormatError(f"embedding record has no {H_MODEL} header: which model made it?")
    if not value or len(value) % 2:
        raise WireFormatError(f"embedding value of {len(value or b'')} bytes is not a float16 vector")
    vector = np.frombuffer(value, dtype="<f2").astype(np.float32)
    if named.get(H_DIM) and named[H_DIM] != str(vector.size):
        raise WireFormatError(f"embedding has {vector.size} values but {H_DIM} says {named[H_DIM]}")
    if not np.all(np.isfinite(vector)) or not 0.9 < float(np.linalg.norm(vector)) < 1.1:
        raise WireFormatError("embedding is not a finite unit vector")
    return ImageEmbedding(key.decode("utf-8", "replace"), named[H_MODEL], vector)
