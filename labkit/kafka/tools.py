"""Kafka's command-line tools (``kafka-topics``, ``kafka-consumer-groups``…) from the engine's jars.

Every Kafka course shows these scripts; in a Kafka download they are shell wrappers that start a
Java class with the ``libs/`` folder on the class path. labkit has the same jars already (the
Apache Kafka engine runs them, ``labkit.kafka.engines.distribution``), so it runs the same
classes directly — no download, no PATH to set — and a lesson can show Kafka's view beside
labkit's: ``run_tool(settings, "kafka-topics", "--describe", "--topic", "image-requests")``, or
``labkit kafka-tool kafka-topics --describe --topic image-requests`` at a terminal.

The tools speak the Kafka protocol, so they work against any cluster, including the lab's Tansu
broker, within what Tansu answers (it lists no group members, for one).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from ..config import Settings
from ..errors import LabkitError
from .engines.apache import default_cache_dir
from .engines.distribution import TOOLS_LOG4J_CONFIG, KafkaRuntime, kafka_runtime

#: Each tool's script name (as in a Kafka download's ``bin/``) → the class it runs, in Apache Kafka 4.x.
TOOLS: dict[str, str] = {
    "kafka-topics": "org.apache.kafka.tools.TopicCommand",
    "kafka-console-consumer": "org.apache.kafka.tools.consumer.ConsoleConsumer",
    "kafka-console-producer": "org.apache.kafka.tools.ConsoleProducer",
    "kafka-consumer-groups": "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
    "kafka-consumer-perf-test": "org.apache.kafka.tools.ConsumerPerformance",
    "kafka-get-offsets": "org.apache.kafka.tools.GetOffsetShell",
}

#: A tool's JVM: small, and quick to start (no JIT warm-up worth waiting for in a one-shot command).
TOOL_JVM = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


@dataclass(frozen=True)
class ToolRun:
    """What a tool printed, and how it ended."""

    tool: str
    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    def check(self) -> ToolRun:
        """This run, if it succeeded; else a :class:`LabkitError` with what the tool said."""
        if self.returncode != 0:
            said = (self.stderr.strip() or self.stdout.strip()).splitlines()[-3:]
            raise LabkitError(
                f"{self.tool} exited with {self.returncode}: {' / '.join(said) or 'no output'}. Check its "
                f"arguments (`labkit kafka-tool {self.tool} --help`) and that the broker is up (`labkit topics list`)."
            )
        return self


def tool_runtime(settings: Settings) -> KafkaRuntime:
    """Java and the engine's jars (fetched once from Maven, as for ``--engine kafka``)."""
    return kafka_runtime(settings.kafka_version, settings.kafka_cache_dir or default_cache_dir())


def tool_command(settings: Settings, tool: str, *args: str) -> list[str]:
    """The command line running Kafka's ``tool`` on ``settings``' cluster (``--bootstrap-server`` added)."""
    try:
        main_class = TOOLS[tool]
    except KeyError:
        raise LabkitError(f"labkit does not know the tool {tool!r}; it runs {', '.join(TOOLS)}.") from None
    return tool_runtime(settings).command(
        main_class,
        "--bootstrap-server",
        settings.bootstrap_servers,
        *args,
        jvm=TOOL_JVM,
        logging_config=TOOLS_LOG4J_CONFIG,
    )


def run_tool(settings: Settings, tool: str, *args: str, timeout: float = 120) -> ToolRun:
    """Run Kafka's ``tool`` with ``args`` against ``settings``' cluster and return what it printed."""
    command = tool_command(settings, tool, *args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    return ToolRun(tool, command, done.returncode, done.stdout, done.stderr)
