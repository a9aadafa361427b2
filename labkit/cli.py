"""The ``labkit`` command: one subcommand per part of the pipeline, every setting also a flag.

    labkit up            broker + topics + processor + web app, until Ctrl-C; a part that dies restarts
    labkit lab           the same, plus JupyterLab on notebooks/
    labkit broker        the embedded Kafka-protocol broker (Tansu) alone
    labkit topics create|list|describe
    labkit processor     one CLIP processor (start several: they share the partitions)
    labkit web           the web app alone
    labkit send FILE…    send images through the running pipeline and print their labels
    labkit bench         measure the model alone and the whole pipeline, as ratios
    labkit config        print the settings in force

Errors that a user can fix print as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from pydantic import ValidationError

from .config import Settings, load_settings
from .errors import LabkitError


def _settings_flags() -> argparse.ArgumentParser:
    """A parent parser with ``--field-name`` for every Settings field (help text from the field)."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group("settings (each also LABKIT_<NAME>)")
    for name, field in Settings.model_fields.items():
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, metavar="VALUE",
                           help=f"{field.description} [default: {field.default}]")
    return parser


def build_parser() -> argparse.ArgumentParser:
    common = _settings_flags()
    parser = argparse.ArgumentParser(prog="labkit", description="Real-time CLIP image analysis with Kafka.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", parents=[common],
                             help="run broker, topics, processor and web app until Ctrl-C (restarting any that dies)")
    up.add_argument("--no-web", action="store_true", help="run without the web app (e.g. on Binder)")
    up.add_argument("--processors", type=int, default=1, help="how many processors join the group")
    lab = commands.add_parser("lab", parents=[common], help="`up` plus JupyterLab on the notebooks")
    lab.add_argument("--notebook-dir", type=Path, default=Path("notebooks"))
    lab.add_argument("--no-web", action="store_true", help="run without the web app")
    lab.add_argument("--processors", type=int, default=1, help="how many processors join the group")
    commands.add_parser("broker", parents=[common], help="run the embedded Kafka-protocol broker")
    topics = commands.add_parser("topics", parents=[common], help="create, list or describe labkit's topics")
    topics.add_argument("action", choices=["create", "list", "describe"])
    commands.add_parser("processor", parents=[common], help="run one CLIP processor (a consumer-group member)")
    commands.add_parser("web", parents=[common], help="run the web app")
    send = commands.add_parser("send", parents=[common], help="send images and print their labels")
    send.add_argument("files", nargs="+", type=Path)
    commands.add_parser("config", parents=[common], help="print the settings in force")
    bench = commands.add_parser("bench", parents=[common], help="measure the model alone and the whole pipeline")
    bench.add_argument("--quick", action="store_true", help="a small smoke run of every section")
    bench.add_argument("--uploads", type=int, default=500, help="uploads per saturated pipeline run")
    bench.add_argument("--concurrency", type=int, default=32, help="uploads in flight when saturating")
    bench.add_argument("--photos", type=Path, default=None, help="folder of *.jpg photos (default: labkit's samples)")
    bench.add_argument("--out", type=Path, default=Path("bench-results"), help="where bench.json and bench.png go")
    load = commands.add_parser("load", parents=[common],
                               help="load-test the web app: many clients, every result checked, memory watched")
    load.add_argument("--uploads", type=int, default=1000, help="uploads in all")
    load.add_argument("--clients", type=int, default=50, help="simulated users, each one upload at a time")
    load.add_argument("--url", default=None, help="a running web app (default: start broker, processor and web here)")
    load.add_argument("--photos", type=Path, default=None, help="folder of *.jpg photos (default: labkit's samples)")
    return parser


def _wait_for_signal(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def _cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    from .broker import EmbeddedBroker

    with EmbeddedBroker(settings.broker_port, settings.broker_host) as broker:
        print(f"broker ready: Kafka protocol on {broker.bootstrap_servers} (Tansu, in-memory). Ctrl-C stops it.",
              flush=True)
        stop = threading.Event()
        _wait_for_signal(stop)
        while not stop.wait(0.5):
            if broker.process.poll() is not None:
                raise LabkitError(f"the broker exited with code {broker.process.returncode}")
    return 0


def _cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from .admin import create_topics, describe_topics, labkit_topics, wait_for_broker

    if args.action == "create":
        for topic, state in create_topics(settings).items():
            print(f"{topic}: {state}")
        return 0
    if args.action == "list":
        metadata = wait_for_broker(settings)
        for name in sorted(t for t in metadata.topics if not t.startswith("__")):
            mark = "*" if name in labkit_topics(settings) else " "
            print(f"{mark} {name}  ({len(metadata.topics[name].partitions)} partitions)")
        return 0
    rows = describe_topics(settings)
    print(f"{'topic':<22}{'partition':>10}{'leader':>8}{'low':>8}{'high':>8}{'committed':>11}{'lag':>6}"
          f"   (committed/lag: group {settings.group_id!r})")
    for r in rows:
        committed = "-" if r.committed is None else r.committed
        lag = "-" if r.lag is None else r.lag
        print(f"{r.topic:<22}{r.partition:>10}{r.leader:>8}{r.low:>8}{r.high:>8}{committed:>11}{lag:>6}")
    return 0


def _cmd_processor(settings: Settings, args: argparse.Namespace) -> int:
    from .processor import READY_MESSAGE, Processor

    processor = Processor(settings)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: processor.stop())

    def announce() -> None:  # on stdout whatever the log level: `labkit up` waits for this line
        if processor.ready.wait():
            print(f"{READY_MESSAGE}: {processor.name}, partitions {processor.assignment}", flush=True)

    threading.Thread(target=announce, daemon=True).start()
    processor.run()
    return 0


def _cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from .admin import wait_for_topics
    from .web import serve

    wait_for_topics(settings, [settings.requests_topic, settings.results_topic], who="web")
    serve(settings)
    return 0


def _raise_interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def _cmd_stack(settings: Settings, args: argparse.Namespace) -> int:
    from .stack import Stack

    jupyter = args.command == "lab"
    if jupyter and not args.notebook_dir.is_dir():
        raise LabkitError(f"No notebooks at {args.notebook_dir.resolve()}: run `labkit lab` from the labkit "
                          "repository, or pass --notebook-dir PATH.")
    stack = Stack(settings, web=not args.no_web, jupyter=jupyter, processors=args.processors,
                  notebook_dir=getattr(args, "notebook_dir", None))
    # Ctrl-C during start-up must also stop what was started: turn SIGTERM into KeyboardInterrupt.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        stack.start()
    except KeyboardInterrupt:
        stack.stop()
        return 130
    if jupyter:
        print("    labkit | open notebooks/00_quickstart.ipynb in JupyterLab to begin", flush=True)
    return stack.run_until_signal()


def _cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    from .client import LabClient
    from .wire import describe_result

    with LabClient(settings) as lab:
        ids = [(lab.submit(path), path) for path in args.files]
        for request_id, path in ids:
            print(f"{path}: {describe_result(lab.wait(request_id))}")
    return 0


def _cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from .bench import BenchOptions, run_bench

    run_bench(settings, BenchOptions(uploads=args.uploads, concurrency=args.concurrency, photos=args.photos,
                                     out=args.out, quick=args.quick))
    return 0


def _cmd_load(settings: Settings, args: argparse.Namespace) -> int:
    from .bench.load import load_test
    from .samples import sample_photos

    paths = sorted(args.photos.glob("*.jpg")) if args.photos else list(sample_photos().values())
    if not paths:
        raise LabkitError(f"No *.jpg photos in {args.photos}.")
    report = load_test(settings, [p.read_bytes() for p in paths], args.uploads, args.clients, args.url)
    for key, value in report.items():
        print(f"{key:>24}: {value}")
    return 0 if report["lost"] == 0 else 1


def _cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    for key, value in sorted(settings.to_env(reveal_secrets=False).items()):
        print(f"{key}={value}")
    return 0


COMMANDS = {"broker": _cmd_broker, "topics": _cmd_topics, "processor": _cmd_processor, "web": _cmd_web,
            "up": _cmd_stack, "lab": _cmd_stack, "send": _cmd_send, "config": _cmd_config,
            "bench": _cmd_bench, "load": _cmd_load}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {name: getattr(args, name) for name in Settings.model_fields}
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        print(f"labkit: error: setting {error['loc'][0]}: {error['msg']}", file=sys.stderr)
        return 2
    # Libraries (open_clip logs to the root logger) at WARNING; labkit's own lines at the chosen level.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("labkit").setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        logging.getLogger("labkit.kafka").setLevel(logging.CRITICAL)  # we report broker trouble ourselves
    try:
        return COMMANDS[args.command](settings, args)
    except LabkitError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
