"""Lesson 18's check (Docker Compose): a service added to docker-compose.yml, as Compose resolves it."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ..config import Settings
from ..errors import LabkitError
from ._feedback import ExerciseFailed, require, solved


class ComposeRejected(LabkitError):
    """Compose refused the file; the message is what Compose said."""


def find_compose_file() -> Path:
    """The docker-compose.yml of the labkit checkout this code runs from, or above the working directory."""
    here = Path(__file__).resolve().parents[2]
    for folder in (here, Path.cwd().resolve(), *Path.cwd().resolve().parents):
        if (folder / "docker-compose.yml").is_file():
            return folder / "docker-compose.yml"
    raise LabkitError(
        f"No docker-compose.yml next to labkit ({here}) nor above {Path.cwd()}: open this notebook from a "
        "clone of the labkit repository (`git clone …; cd labkit; labkit lab`), where the file sits at the top."
    )


def load_compose(path: Path | None = None) -> dict[str, Any]:
    """The compose file as written (YAML anchors and ``<<:`` merges applied by the YAML parser)."""
    return yaml.safe_load((path or find_compose_file()).read_text())


def compose_command() -> list[str] | None:
    """``docker compose`` (v2, a Docker CLI plugin) when present, else ``docker-compose`` (v1), else None."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=20)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def resolved_config(extra_services: dict[str, Any] | None = None, path: Path | None = None) -> dict[str, Any] | None:
    """What Compose makes of the file, plus ``extra_services`` as an override file; None without Compose.

    ``docker compose config`` merges anchors and override files, substitutes ``${VAR:-default}``
    from this process's environment (as it would from your shell) and makes paths absolute.
    Raises :class:`ComposeRejected` when Compose refuses the file.
    """
    command = compose_command()
    if command is None:
        return None
    path = path or find_compose_file()
    with tempfile.TemporaryDirectory(prefix="labkit-compose-") as scratch:
        files = ["-f", str(path)]
        if extra_services:
            override = Path(scratch) / "override.yml"
            override.write_text(yaml.safe_dump({"services": extra_services}, sort_keys=False))
            files += ["-f", str(override)]  # relative paths in it resolve from the first file's folder
        result = subprocess.run(
            [*command, *files, "config"], capture_output=True, text=True, timeout=60, cwd=path.parent
        )
    if result.returncode != 0:
        raise ComposeRejected(result.stderr.strip() or result.stdout.strip())
    return yaml.safe_load(result.stdout)


def normalized(service: dict[str, Any], project_dir: Path) -> dict[str, Any]:
    """The parts of a service the check reads, in one shape whether Compose resolved them or not."""
    build = service.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if isinstance(build, dict):
        build = {"dockerfile": "Dockerfile", **build}
        build = {
            "context": str((project_dir / str(build["context"])).resolve()),
            "dockerfile": str(build["dockerfile"]),
            "target": build.get("target"),
        }
    depends = service.get("depends_on") or {}
    if isinstance(depends, list):  # the short form only waits for the containers to start
        depends = {name: {"condition": "service_started"} for name in depends}
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return {
        **service,
        "build": build,
        "depends_on": {name: (dep or {}).get("condition", "service_started") for name, dep in depends.items()},
        "environment": {str(k): None if v is None else str(v) for k, v in env.items()},
    }


def _advertised(compose: dict[str, Any]) -> dict[str, str]:
    """The broker's listeners as ``{name: advertised host:port}``, from the kafka service."""
    listeners = compose["services"]["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    return dict(item.split("://", 1) for item in listeners.split(","))


def _parsed_command(command: Any, results_topic: str) -> tuple[list[str], Any]:
    """The service's command as labkit's own CLI parses it (argparse exits on an unknown word)."""
    from ..cli import build_parser

    words = shlex.split(command) if isinstance(command, str) else command
    require(
        isinstance(words, list) and words[:1] == ["labkit"],
        f'Give the service a "command": the labkit command line its container runs, as a list of words, '
        f'e.g. ["labkit", "topics", "tail", "{results_topic}", "--from-beginning"]; it has {command!r}.',
    )
    words = [str(word) for word in words]
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            args = build_parser().parse_args(words[1:])
    except SystemExit:
        args = None
    problem = said.getvalue().strip().splitlines()[-1:] or ["?"]
    require(
        args is not None,
        f"`{shlex.join(words)}` is not a command labkit knows ({problem[0]}); `labkit topics --help` lists "
        "what `topics tail` takes.",
    )
    return words, args


def _check_one_shot_tail(service: dict[str, Any], words: list[str], args: Any, results_topic: str) -> None:
    require(
        args.command == "topics" and args.action == "tail" and args.topic == results_topic,
        f"The monitor should print the results topic: `labkit topics tail {results_topic} ...`; it runs "
        f"`{shlex.join(words)}`.",
    )
    require(
        not args.follow and (args.from_beginning or args.group or args.max),
        f"`{shlex.join(words)}` never ends: without --from-beginning (or --group) `topics tail` starts at the "
        "end and follows, waiting for new records until it is stopped. A one-shot job must finish: add "
        "--from-beginning (it stops once every partition is read) and no --follow.",
    )
    restart = service.get("restart", "no")
    require(
        restart in ("no", "on-failure") or str(restart).startswith("on-failure:"),
        f"restart: {restart!r} starts the monitor again each time it exits — it would print the topic over "
        'and over. A one-shot job runs once: restart: "no" (the default), like the `topics` service.',
    )


def _check_image(service: dict[str, Any], app: dict[str, Any]) -> None:
    image, build = service.get("image"), service.get("build")
    require(
        image == app["image"] or build is not None,
        (
            "The service names no image and no build. "
            if image is None
            else f"The service runs image {image!r}, which has no labkit in it (or is not built here). "
        )
        + f"labkit's services run {app['image']!r}, built from {app['build']['dockerfile']} "
        f"(target {app['build']['target']!r}): take the x-labkit block whole — "
        "{**x_labkit, ...} in Python, `<<: *labkit` in the file.",
    )
    require(
        build is not None,
        f"image: {image!r} with no build: Compose treats it as an image to *pull*. On a machine where no other "
        "service has built it yet, `docker compose up` may ask Docker Hub for it and stop with 'pull access "
        "denied'. Keep the build next to the image, as every labkit service does: {**x_labkit, ...}.",
    )
    require(
        image == app["image"],
        f"With a build but {'no image name' if image is None else f'image {image!r}'}, Compose builds a second "
        f"image for this service alone (named after the project and service when unnamed). Name it "
        f"{app['image']!r}, as the others do, so all of them run one image: {{**x_labkit, ...}}.",
    )
    require(
        build == app["build"],
        f"The service builds {build} under the name {image!r}, but the others build {app['build']}: two different "
        "builds for one name, and whichever finishes last wins the tag. Reuse x-labkit's build unchanged.",
    )


def _check_bootstrap(service: dict[str, Any], compose: dict[str, Any], args: Any) -> str:
    internal = compose["x-labkit"]["environment"]["LABKIT_BOOTSTRAP"]
    host_listener = next((a for a in _advertised(compose).values() if a.startswith("localhost:")), "localhost:9092")
    bootstrap = args.bootstrap or service["environment"].get("LABKIT_BOOTSTRAP")
    inside = "inside a container `localhost` is the container itself, where no broker runs"
    require(
        bootstrap is not None,
        f"No LABKIT_BOOTSTRAP: labkit would use its default, localhost:9092, and {inside}. Containers reach "
        f"Kafka at {internal}: take x-labkit's environment with the rest of the block.",
    )
    require(
        bootstrap.split(":")[0] not in ("localhost", "127.0.0.1"),
        f"LABKIT_BOOTSTRAP={bootstrap} is an address for programs on your machine; {inside}. Containers reach "
        f"Kafka on the INTERNAL listener, {internal} (notebook 14).",
    )
    require(
        bootstrap == internal,
        f"LABKIT_BOOTSTRAP={bootstrap}: "
        + (
            f"that port is the HOST listener, which advertises {host_listener}: the client would bootstrap, be "
            f"told '{host_listener}', and fail there — the mistake of notebook 14. "
            if bootstrap.split(":")[-1] == host_listener.split(":")[-1]
            else ""
        )
        + f"Containers use the INTERNAL listener, {internal}.",
    )
    return bootstrap


def _check_waits_for_topics(service: dict[str, Any], compose: dict[str, Any]) -> None:
    depends = service["depends_on"]
    auto_create = compose["services"]["kafka"]["environment"].get("KAFKA_AUTO_CREATE_TOPICS_ENABLE")
    require(
        depends,
        "The monitor waits for nothing: Compose may start it before Kafka answers, and `topics tail` fails "
        'on a missing topic. Add depends_on: {"topics": {"condition": "service_completed_successfully"}}.',
    )
    require(
        depends.get("topics") == "service_completed_successfully",
        f"depends_on {depends}: "
        + (
            "service_started (the short, list form) waits only until the container has started, not until "
            "the broker answers. "
            if "service_started" in depends.values()
            else ""
        )
        + f"the monitor reads a topic that exists only once the one-shot `topics` job has run (Kafka here has "
        f"KAFKA_AUTO_CREATE_TOPICS_ENABLE={auto_create}). Wait for it as the processor does: "
        '"topics": {"condition": "service_completed_successfully"} — that job itself waits for a healthy kafka.',
    )


def check_monitor_service(monitor: Any) -> None:
    """``monitor``: a compose service that prints the results topic once and exits, added to labkit's file."""
    require(
        isinstance(monitor, dict),
        f"`monitor` should be a dict, one compose service (the keys of a service: image, command, ...); it is "
        f"{type(monitor).__name__}.",
    )
    path = find_compose_file()
    compose = load_compose(path)
    try:
        resolved = resolved_config({"monitor": monitor}, path)
    except ComposeRejected as refusal:
        raise ExerciseFailed(
            f"Compose refuses the file with your service added:\n{refusal}\nFix what it names."
        ) from None
    service = normalized((resolved or {"services": {"monitor": monitor}})["services"]["monitor"], path.parent)
    app = normalized(compose["x-labkit"], path.parent)
    results_topic = app["environment"].get("LABKIT_RESULTS_TOPIC") or str(
        Settings.model_fields["results_topic"].default
    )
    words, args = _parsed_command(service.get("command"), results_topic)
    _check_image(service, app)
    bootstrap = _check_bootstrap(service, compose, args)
    _check_waits_for_topics(service, compose)
    _check_one_shot_tail(service, words, args, results_topic)
    require(
        not service.get("ports"),
        f"ports: {service.get('ports')} publishes a port of the monitor on your machine, but it serves nothing "
        "(it only reads Kafka). Remove it.",
    )
    command = compose_command() if resolved else None
    how = f"`{shlex.join(command)} config` accepts it" if command else "read in Python (no Compose)"
    solved(
        f"{how}: `{shlex.join(words)}` runs once from image {service['image']!r}, reaches Kafka at {bootstrap}, "
        "starts after the topics job succeeded, and is not restarted. At home: `docker compose up monitor`."
    )
