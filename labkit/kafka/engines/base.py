"""What every engine labkit starts offers: an address for clients, start, stop, a word on its health."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from typing_extensions import Self

if TYPE_CHECKING:
    from ...ops.supervisor import Child


class Broker(ABC):
    """A Kafka cluster that this process started (one node or several); a context manager.

    Clients only ever see :attr:`bootstrap_servers`: nothing else in labkit knows which engine
    answers there.
    """

    #: ``"tansu"`` or ``"kafka"``: the value of ``LABKIT_ENGINE`` that starts this engine.
    engine: ClassVar[str]
    #: What a person calls it, for messages: "Tansu (in memory)", "Apache Kafka 4.1.1 (KRaft, 3 nodes)".
    description: str

    @property
    @abstractmethod
    def bootstrap_servers(self) -> str:
        """``HOST:PORT[,HOST:PORT…]``: where clients connect first."""

    @abstractmethod
    def start(self, timeout: float = 60.0) -> Self:
        """Start it and return once it answers Kafka clients."""

    @abstractmethod
    def stop(self) -> None:
        """Stop it (politely, then firmly); safe to call twice."""

    @abstractmethod
    def failure(self) -> str | None:
        """Why the cluster can no longer serve (say, its only process exited), or None while it can."""

    @abstractmethod
    def pids(self) -> list[int]:
        """The OS processes serving clients now, one per node: where ``labkit bench`` reads broker CPU time."""

    def supervised_children(self) -> list[Child]:
        """The processes a supervisor should restart when they die (Apache Kafka's nodes; none for Tansu)."""
        return []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
