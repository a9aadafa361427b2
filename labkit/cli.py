"""The ``labkit`` command: one subcommand per part of the pipeline, every setting also a flag.

    labkit up            broker + topics + a processor per task (CLIP, OCR) + web app, until Ctrl-C; dead parts restart
    labkit lab           the same, plus JupyterLab on notebooks/
    labkit broker        the broker alone: Tansu (embedded, in memory) or Apache Kafka with --engine kafka [--brokers 3]
    labkit cluster status|stop|kill|start [NODE]   one node of labkit's Apache Kafka cluster, on purpose
    labkit topics create|list|describe|tail|perf
    labkit kafka-tool TOOL …   Kafka's own tools (kafka-topics, kafka-consumer-groups…) from the engine's jars
    labkit processor     one processor of one task, --task clip|ocr (several of a task share its partitions)
    labkit web           the web app alone
    labkit sink          the history's sink group (--rebuild: replay into a new index; --reembed: after a model change)
    labkit send FILE…    send images through the running pipeline and print their labels
    labkit bench         measure the model alone and the whole pipeline, as ratios
    labkit load          load-test the web app: many clients, every result checked
    labkit config        print the settings in force

Errors that a user can fix print as one line on stderr with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from pydantic import ValidationError

from ._cli_settings import add_settings
from ._logging import log_to_stderr
from ._process import on_stop_signal
from .config import SETTING_GROUPS, Settings, load_settings
from .errors import LabkitError
from .kafka.tools import TOOLS


def processor_counts(text: str) -> dict[str, int]:
    """``--processors``: ``N`` (CLIP's processors) or ``TASK=N,…``, as ``{task: N}``."""
    counts = {}
    for part in text.split(","):
        task, _, count = part.strip().rpartition("=")
        if not count.isdigit() or (task and not task.replace("_", "").isalnum()):
            raise argparse.ArgumentTypeError(f"{text!r}: give a number (CLIP's processors) or TASK=N,… (clip=2,ocr=1)")
        counts[task.strip() or "clip"] = int(count)
    return counts


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labkit",
        description="Real-time CLIP image analysis with Kafka.",
        epilog="`labkit COMMAND --help` shows a command's arguments and the settings "
        "it reads; `labkit config --help` lists every setting.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=help, description=help)

    up = command(
        "up",
        "run broker, topics, a processor per task, the history's sink and the web app until Ctrl-C "
        "(restarting any that dies)",
    )
    up.add_argument("--no-web", action="store_true", help="run without the web app (e.g. on Binder)")
    lab = command("lab", "`up` plus JupyterLab on the notebooks")
    lab.add_argument("--notebook-dir", type=Path, default=Path("notebooks"))
    lab.add_argument("--no-web", action="store_true", help="run without the web app")
    broker = command("broker", "run the broker alone: Tansu, or Apache Kafka (--engine kafka, --brokers 3)")
    for starts_a_broker in (up, lab, broker):
        starts_a_broker.add_argument(
            "--fresh", action="store_true", help="engine kafka: wipe the cluster's data (topics, offsets) first"
        )
    for stack in (up, lab):
        stack.add_argument("--no-sink", action="store_true", help="run without the history's sink (`labkit sink`)")
        stack.add_argument(
            "--processors",
            type=processor_counts,
            default={},
            metavar="N|TASK=N,…",
            help="how many processors: N = CLIP's (they share its group), or per task: clip=2,ocr=2; "
            "a task of --tasks not named runs 1 [default: 1 each]",
        )
    cluster = command("cluster", "show, stop, SIGKILL or start one node of labkit's running Apache Kafka cluster")
    cluster.add_argument("action", choices=["status", "stop", "kill", "start"])
    cluster.add_argument("node", nargs="?", type=int, help="the node id (1, 2, 3…); status shows them all")
    topics = command("topics", "create, list or describe labkit's topics; tail a topic; measure a consumer")
    topics.add_argument("action", choices=["create", "list", "describe", "tail", "perf"])
    topics.add_argument("topic", nargs="?", help="for tail and perf: the topic to read")
    topics.add_argument("--from-beginning", action="store_true", help="tail: start at each partition's first record")
    topics.add_argument(
        "--group",
        default=None,
        help="tail: read in this consumer group, from its committed offsets; describe: show its lag too",
    )
    topics.add_argument("--max", type=int, default=None, metavar="N", help="tail, perf: stop after N records")
    topics.add_argument("--follow", action="store_true", help="tail: keep waiting for new records (Ctrl-C ends)")
    kafka_tool = command(
        "kafka-tool",
        "run one of Apache Kafka's own tools (kafka-topics, kafka-consumer-groups…) from the engine's jars",
    )
    kafka_tool.add_argument("tool", choices=sorted(TOOLS), help="the tool, named as in a Kafka download's bin/")
    kafka_tool.add_argument(
        "tool_args",
        nargs=argparse.REMAINDER,
        metavar="ARGS",
        help="the tool's own arguments (--bootstrap-server is added)",
    )
    processor = command(
        "processor", "run one processor of one task, e.g. --task ocr (a member of the task's consumer group)"
    )
    processor.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="write this file once the group has given the processor partitions (how `labkit up` knows it is ready)",
    )
    processor.add_argument(
        "--stats-file",
        type=Path,
        default=None,
        help="rewrite this JSON file with the processor's counts after every batch (how `labkit bench` reads them)",
    )
    command("web", "run the web app")
    sink = command("sink", "keep the history: a consumer group writing requests, results and embeddings to PostgreSQL")
    sink.add_argument(
        "--ready-file", type=Path, default=None, help="write this file once the group has given the sink partitions"
    )
    sink.add_argument(
        "--stats-file",
        type=Path,
        default=None,
        help="rewrite this JSON file with the sink's counts after every batch (how `labkit bench` reads them)",
    )
    sink.add_argument(
        "--rebuild",
        action="store_true",
        help="first replay the topics from the start into a new index version and switch to it",
    )
    sink.add_argument(
        "--reembed",
        action="store_true",
        help="after a model change: embed the kept requests again with LABKIT_MODEL, then rebuild",
    )
    sink.add_argument(
        "--fit-index",
        action="store_true",
        help="fit each model's vector index to its count now (IVFFlat from LABKIT_IVFFLAT_MIN_ROWS), say what it did, "
        "and exit",
    )
    sink.add_argument(
        "--allow-missing",
        action="store_true",
        help="switch to the rebuilt version even if the topics no longer hold some of its rows",
    )
    send = command("send", "send images and print their labels")
    send.add_argument("files", nargs="+", type=Path)
    command("config", "print the settings in force, by group")
    bench = command("bench", "measure the model alone and the whole pipeline")
    bench.add_argument("--quick", action="store_true", help="a small smoke run of every section")
    bench.add_argument("--uploads", type=int, default=500, help="uploads per saturated pipeline run")
    bench.add_argument("--concurrency", type=int, default=32, help="uploads in flight when saturating")
    bench.add_argument("--photos", type=Path, default=None, help="folder of *.jpg photos (default: labkit's samples)")
    bench.add_argument("--out", type=Path, default=Path("bench-results"), help="where bench.json and bench.png go")
    bench.add_argument(
        "--search-sizes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[100_000, 1_000_000],
        metavar="N,N",
        help="vector counts for the search benchmark (j) [default: 100000,1000000]",
    )
    load = command("load", "load-test the web app: many clients, every result checked, memory watched")
    load.add_argument("--uploads", type=int, default=1000, help="uploads in all")
    load.add_argument("--clients", type=int, default=50, help="simulated users, each one upload at a time")
    load.add_argument("--url", default=None, help="a running web app (default: start broker, processor and web here)")
    load.add_argument("--photos", type=Path, default=None, help="folder of *.jpg photos (default: labkit's samples)")
    for name, subparser in commands.choices.items():
        add_settings(subparser, name)
    return parser


def _cmd_broker(settings: Settings, args: argparse.Namespace) -> int:
    from .kafka.engines import engine_for
    from .ops.supervisor import Supervisor

    def say(message: str) -> None:
        print(f"broker: {message}", flush=True)

    on_stop_signal(_raise_interrupt)  # Ctrl-C while Kafka starts stops what started
    with engine_for(settings, settings.service_log_dir, args.fresh, say) as broker:
        say(f"{broker.description} ready on {broker.bootstrap_servers}. Ctrl-C stops it.")
        stop = threading.Event()
        on_stop_signal(stop.set)
        supervisor = Supervisor(broker.supervised_children(), say)  # a node that dies is restarted
        while not stop.wait(0.5):
            if failure := broker.failure():
                raise LabkitError(failure)
            supervisor.check()
    return 0


def _cmd_cluster(settings: Settings, args: argparse.Namespace) -> int:
    from .kafka.engines.control import ClusterControl

    cluster = ClusterControl(settings)
    if args.action != "status":
        if args.node is None:
            raise LabkitError(f"Say which node: labkit cluster {args.action} NODE (one of {cluster.node_ids}).")
        getattr(cluster, args.action)(args.node)
    for node in cluster.status():
        print(f"node {node.node_id}  {node.address:<16} {node.state}" + (f" (pid {node.pid})" if node.pid else ""))
    return 0


def _cmd_topics(settings: Settings, args: argparse.Namespace) -> int:
    from .kafka.console import topics_command

    options = {"from_beginning": args.from_beginning, "group": args.group, "max_records": args.max}
    return topics_command(settings, args.action, args.topic, follow=args.follow, **options)


def _cmd_kafka_tool(settings: Settings, args: argparse.Namespace) -> int:
    import subprocess

    from .kafka.tools import tool_command

    return subprocess.call(tool_command(settings, args.tool, *args.tool_args))


def _cmd_processor(settings: Settings, args: argparse.Namespace) -> int:
    from .processor import Processor

    processor = Processor(settings, stats_file=args.stats_file)
    on_stop_signal(processor.stop)

    def announce() -> None:  # on stdout whatever the log level, and in the ready file `labkit up` waits for
        if processor.ready.wait():
            print(f"processor ready: {processor.name}, partitions {processor.assignment}", flush=True)
            if args.ready_file is not None:
                args.ready_file.write_text(f"{processor.name}\n")

    threading.Thread(target=announce, name="announce-ready", daemon=True).start()
    processor.run()
    return 0


def _cmd_web(settings: Settings, args: argparse.Namespace) -> int:
    from .kafka.admin import wait_for_topics
    from .web import serve

    wait_for_topics(settings, [settings.requests_topic, settings.results_topic], who="web")
    serve(settings)
    return 0


def _cmd_sink(settings: Settings, args: argparse.Namespace) -> int:
    from .history.service import fit_index_now, run_sink

    if args.fit_index:
        return fit_index_now(settings)
    run_sink(
        settings,
        args.rebuild,
        args.reembed,
        allow_missing=args.allow_missing,
        ready_file=args.ready_file,
        stats_file=args.stats_file,
    )
    return 0


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def _cmd_stack(settings: Settings, args: argparse.Namespace) -> int:
    from .ops.stack import Stack, processors_per_task

    jupyter = args.command == "lab"
    if jupyter and not args.notebook_dir.is_dir():
        raise LabkitError(
            f"No notebooks at {args.notebook_dir.resolve()}: run `labkit lab` from the labkit "
            "repository, or pass --notebook-dir PATH."
        )
    stack = Stack(
        settings,
        web=not args.no_web,
        jupyter=jupyter,
        processors=processors_per_task(settings, args.processors),
        notebook_dir=getattr(args, "notebook_dir", None),
        sink=not args.no_sink,
        fresh=args.fresh,
    )
    # Ctrl-C or SIGTERM during start-up must also stop what was started: both raise KeyboardInterrupt.
    on_stop_signal(_raise_interrupt)
    try:
        stack.start()
    except KeyboardInterrupt:
        stack.stop()
        return 130
    if jupyter:
        print("    labkit | open notebooks/00_quickstart.ipynb in JupyterLab to begin", flush=True)
    return stack.run_until_signal()


def _cmd_send(settings: Settings, args: argparse.Namespace) -> int:
    from .lab_client import LabClient
    from .tasks import describe_result

    with LabClient(settings) as lab:
        ids = [(lab.submit(path), path) for path in args.files]
        for request_id, path in ids:
            print(f"{path}: {describe_result(lab.wait(request_id))}")
    return 0


def _cmd_bench(settings: Settings, args: argparse.Namespace) -> int:
    from .bench import BenchOptions, run_bench

    run_bench(
        settings,
        BenchOptions(
            uploads=args.uploads,
            concurrency=args.concurrency,
            photos=args.photos,
            out=args.out,
            quick=args.quick,
            search_sizes=args.search_sizes,
        ),
    )
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
    return 0 if report["lost"] == 0 and report["failed"] == 0 else 1


def _cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    env = settings.to_env(reveal_secrets=False) | {"LABKIT_BOOTSTRAP": settings.bootstrap_servers}
    for group, names in SETTING_GROUPS.items():
        print(f"# {group}")
        for name in names:
            key = f"LABKIT_{name.upper()}"
            print(f"{key}={env.get(key, '')}")
    return 0


COMMANDS = {
    "broker": _cmd_broker,
    "cluster": _cmd_cluster,
    "topics": _cmd_topics,
    "kafka-tool": _cmd_kafka_tool,
    "processor": _cmd_processor,
    "web": _cmd_web,
    "sink": _cmd_sink,
    "up": _cmd_stack,
    "lab": _cmd_stack,
    "send": _cmd_send,
    "config": _cmd_config,
    "bench": _cmd_bench,
    "load": _cmd_load,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {name: getattr(args, name, None) for name in Settings.model_fields}
    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        print(f"labkit: error: setting {error['loc'][0]}: {error['msg']}", file=sys.stderr)
        return 2
    log_to_stderr(settings.log_level)
    try:
        return COMMANDS[args.command](settings, args)
    except LabkitError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
