"""Schema versions: ``MAJOR.MINOR`` in the ``labkit-schema`` header, and what a reader accepts.

Each record type has its current version here.

A minor version only adds optional fields, so a reader of ``1.x`` reads every ``1.y`` (it ignores
fields it does not know and defaults the ones that are missing; not inside a result's ``answer``,
which the task's own model reads strictly: :meth:`labkit.tasks.Task.read`); a new major version is a
breaking change, and a reader refuses it with a :class:`~labkit.errors.WireFormatError` (a
processor dead-letters such a request). A request must carry the header; a result without one
is read as ``1.0`` (results had none before 1.1). Lesson 16 teaches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from ..errors import WireFormatError

H_SCHEMA = "labkit-schema"

#: The major version of the wire format, shared by requests and results (a result's ``schema`` field).
SCHEMA_VERSION = 1


class SchemaVersion(NamedTuple):
    """A ``MAJOR.MINOR`` schema version, as the ``labkit-schema`` header carries it."""

    major: int
    minor: int = 0

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @classmethod
    def parse(cls, text: str | None) -> "SchemaVersion":
        """``"1.1"`` → (1, 1); ``"1"`` → (1, 0); :class:`WireFormatError` for anything else."""
        parts = (text or "").strip().split(".")
        if not 1 <= len(parts) <= 2 or not all(part.isdigit() for part in parts):
            raise WireFormatError(f"{H_SCHEMA} {text!r} is not a MAJOR.MINOR version such as '1.0'")
        return cls(*(int(part) for part in parts))

    def reads(self, other: "SchemaVersion") -> bool:
        """Whether a reader of this version can read a record written with ``other`` (same major)."""
        return other.major == self.major


#: Each record type's current version: results gained the request's position and more timings in 1.1.
REQUEST_SCHEMA = SchemaVersion(SCHEMA_VERSION, 1)  # 1.1: the optional labkit-tasks header
#: 1.2: the task that made it, and OCR's text and lines. 1.3: ``request_id`` (``id`` kept as a copy) and ``answer``,
#: the task's own model (``labels``, ``text`` and ``lines`` kept as copies of CLIP's and OCR's answers).
RESULT_SCHEMA = SchemaVersion(SCHEMA_VERSION, 3)


def schema_of(headers: Sequence[tuple[str, bytes | None]] | None, default: SchemaVersion) -> SchemaVersion:
    """The ``labkit-schema`` version a record's headers declare (``default`` when it has none)."""
    for name, value in headers or ():
        if name == H_SCHEMA and value is not None:
            return SchemaVersion.parse(value.decode("utf-8", "replace"))
    return default
