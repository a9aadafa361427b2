"""The benchmark report: text tables, and one PNG of four plots (the second puts OCR beside CLIP)."""

from __future__ import annotations

from pathlib import Path

from .cpu_budget import PARTS


def _table(title: str, rows: list[dict], columns: list[str]) -> None:
    print(f"\n{title}")
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(str(row.get(c, "")).ljust(w) for c, w in zip(columns, widths)))


def print_report(report: dict) -> None:
    print(
        f"\nlabkit bench — model {report['model']}, {report['machine']['cores']} threads, "
        f"torch {report['machine']['torch']}; best backend: {report['best_backend']}"
    )
    _table(
        "a. image tower alone (ratio = vs torch-fp32 eager at the same batch, this run)",
        report["tower"],
        ["backend", "batch", "img_per_s", "ratio_to_fp32", "note"],
    )
    if report.get("backend_choice"):
        _table(
            f"why {report['best_backend']}: what LABKIT_BACKEND=auto found on 8 sample photos at batch 8 "
            "(the fastest backend that passes the fidelity gate against torch-fp32 and fits "
            "LABKIT_BACKEND_MEMORY_MB; memory_mb: peak resident MB of a fresh process serving it)",
            report["backend_choice"],
            ["name", "img_per_s", "memory_mb", "verdict"],
        )
    _table(
        "b. pipeline, saturated: HTTP → Kafka → processor → Kafka → WebSocket",
        report["pipeline"],
        ["images", "backend", "max_batch", "img_per_s", "raw_img_per_s", "ratio_to_raw", "p50_ms", "p99_ms"],
    )
    light, saturated = report["latency"]["light"], report["latency"]["saturated"]
    _table(
        "c. upload → result latency (ms)",
        [{"load": "light (1 in flight)", **light}, {"load": "saturated (224 px)", **saturated}],
        ["load", "img_per_s", "p50_ms", "p95_ms", "p99_ms"],
    )
    _table(
        "d. batch vs real-time (224 px, saturated)",
        report["batch_curve"],
        ["max_batch", "img_per_s", "p50_ms", "p95_ms", "p99_ms"],
    )
    _table(
        "e. processor memory (peak includes its start-up; ONNX backends serve without PyTorch)",
        report["rss"],
        ["backend", "peak_rss_mb", "steady_rss_mb", "img_per_s"],
    )
    _table(
        "f. consumer-group scaling (224 px, saturated)",
        report["scaling"],
        ["processors", "img_per_s", "p50_ms", "p99_ms"],
    )
    _table(
        "g. text tower (1 template per custom label; trim speed-up measured on 100 prompts)",
        report["text"],
        ["scorer", "labels", "seconds", "trim_speedup", "trim_min_cosine"],
    )
    if report.get("ocr"):
        clip = report["pipeline"][0]["img_per_s"]
        _table(
            f"h. OCR beside CLIP (one processor each; CLIP's pipeline, 224 px: {clip} img/s); "
            "read_ok = cards read exactly",
            report["ocr"],
            ["images", "count", "alone_img_per_s", "read_ok", "lines_found", "img_per_s", "ratio_to_alone", "p50_ms"],
        )
    if report.get("sink"):
        _table(
            "i. the history's sink: three records per upload, one transaction per batch (ratio = vs the pipeline, b)",
            [report["sink"]],
            ["requests", "records", "records_per_s", "requests_per_s", "pipeline_img_per_s", "ratio"],
        )
    if report.get("search"):
        _table(
            "j. vector search, top 10 of n 512-d vectors: exact vs pgvector HNSW (m 16, ef_construction 64) at "
            "ef_search 40, 100 and 200, and IVFFlat as labkit builds it (lists, probes)",
            report["search"],
            [
                "size",
                "exact_p50_ms",
                "exact_p99_ms",
                "hnsw_build_s",
                "hnsw_index_mb",
                "hnsw40_p50_ms",
                "hnsw40_p99_ms",
                "hnsw40_recall",
                "hnsw100_p50_ms",
                "hnsw100_p99_ms",
                "hnsw100_recall",
                "hnsw200_p50_ms",
                "hnsw200_p99_ms",
                "hnsw200_recall",
                "ivfflat_lists",
                "ivfflat_probes",
                "ivfflat_build_s",
                "ivfflat_index_mb",
                "ivfflat_p50_ms",
                "ivfflat_p99_ms",
                "ivfflat_recall",
            ],
        )

    if report.get("failover"):
        _table(
            "k. failover on Apache Kafka: a partition leader's broker SIGKILLed (kill) or shut down (stop) → the first "
            "acknowledged produce to a partition it led (replication factor 3, min.insync.replicas 2)",
            report["failover"],
            ["broker", "how", "seconds"],
        )
    if report.get("exactly_once"):
        _table(
            "l. exactly-once on Apache Kafka: (b)'s 224 px run with each batch's results and offsets in one "
            "transaction (ratio = vs at-least-once, this run)",
            [report["exactly_once"]],
            ["img_per_s", "at_least_once_img_per_s", "ratio", "p50_ms", "p99_ms"],
        )

    if report.get("cpu_budget"):
        short = dict(zip(PARTS, ("loadgen", "web", "broker", "decode", "infer", "kafka", "loop", "sink", "db")))
        rows = [{short.get(k, k): v for k, v in row.items()} for row in report["cpu_budget"]]
        _table(
            "m. CPU budget: ms of CPU per image, read from the OS (infer = the model's threads and the loop's time "
            "in its runs; kafka = the processor's librdkafka threads; db = the sink's PostgreSQL)",
            rows,
            ["run", "img_per_s", *short.values(), "total"],
        )


def save_plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ((ax_a, ax_b), (ax_c, ax_d)) = plt.subplots(2, 2, figsize=(12, 8))
    fig.suptitle(f"labkit bench — {report['model']}")

    batches = sorted({r["batch"] for r in report["tower"]})
    backends = list(dict.fromkeys(r["backend"] for r in report["tower"]))
    width = 0.8 / len(batches)
    for i, batch in enumerate(batches):
        speeds = [
            next((r["img_per_s"] for r in report["tower"] if r["backend"] == b and r["batch"] == batch), 0)
            for b in backends
        ]
        ax_a.bar([x + i * width for x in range(len(backends))], speeds, width, label=f"batch {batch}")
    ax_a.set_xticks([x + width * (len(batches) - 1) / 2 for x in range(len(backends))], backends)
    ax_a.set(title="a. image tower alone", ylabel="images / s")
    ax_a.legend()

    names = [r["images"] for r in report["pipeline"]]
    ax_b.bar(names, [r["img_per_s"] for r in report["pipeline"]], label="pipeline (CLIP)")
    if report.get("ocr"):
        ocr = report["ocr"]
        ax_b.bar([f"OCR {r['images']}" for r in ocr], [r["img_per_s"] for r in ocr], label="pipeline (OCR)")
    ax_b.axhline(report["pipeline"][0]["raw_img_per_s"], color="k", linestyle="--", label="tower alone")
    ax_b.set(title=f"b. pipeline, saturated ({report['best_backend']})", ylabel="images / s")
    ax_b.legend()

    curve = report["batch_curve"]
    ax_c.plot([r["max_batch"] for r in curve], [r["img_per_s"] for r in curve], "o-", label="throughput")
    ax_c.set(title="d. batch vs real-time", xlabel="max batch size", ylabel="images / s")
    ax_latency = ax_c.twinx()
    ax_latency.plot(
        [r["max_batch"] for r in curve], [r["p50_ms"] for r in curve], "s--", color="tab:red", label="p50 latency"
    )
    ax_latency.set_ylabel("p50 latency (ms)")
    ax_c.legend(loc="upper left")
    ax_latency.legend(loc="lower right")

    names = [r["backend"] for r in report["rss"]]
    ax_d.bar([x - 0.2 for x in range(len(names))], [r["peak_rss_mb"] for r in report["rss"]], 0.4, label="peak")
    ax_d.bar([x + 0.2 for x in range(len(names))], [r["steady_rss_mb"] for r in report["rss"]], 0.4, label="steady")
    ax_d.set_xticks(range(len(names)), names)
    ax_d.set(title="e. processor memory", ylabel="MB")
    ax_d.legend()

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
