"""The errors labkit raises on purpose, each carrying a message that says what to do next.

The CLI prints a :class:`LabkitError` as one line and exits non-zero, with no traceback:
these are situations a user can fix (a broker that is not running, weights that cannot be
downloaded), not bugs.
"""

from __future__ import annotations


class LabkitError(Exception):
    """A problem the user can fix; ``str(error)`` says what happened and what to do."""


class BrokerUnavailable(LabkitError):
    """No Kafka broker answered at the configured bootstrap address."""


class TopicMissing(LabkitError):
    """A topic labkit needs does not exist (Apache Kafka does not create topics on read)."""


class ModelUnavailable(LabkitError):
    """CLIP weights could not be found or downloaded."""


class BadImage(LabkitError):
    """The bytes are not an image labkit accepts; the message says why and what is accepted."""


class WireFormatError(LabkitError):
    """A Kafka record does not follow labkit's wire format (see ``labkit.records.wire``)."""


class UnknownTasks(WireFormatError):
    """An upload names tasks that do not exist, or that this pipeline does not run (``LABKIT_TASKS``)."""
