"""``labkit bench``: measure the model alone and the whole pipeline in one run; print their ratio.

Sections (see README "Benchmark"):
  a. raw image-tower throughput per backend and batch size, and its ratio to PyTorch fp32 eager;
  b. pipeline throughput, saturated, HTTP → Kafka → processor → Kafka → WebSocket, for 224 px
     photos, 1080p and 12 MP JPEGs, and its ratio to (a) for the same backend and batch limit;
  c. upload→result latency percentiles at light load (one image in flight) and saturated;
  d. throughput and latency versus the processor's maximum batch size ("batch vs real-time");
  e. peak and steady memory (RSS) of the processor process per backend (the one-off PyTorch
     child that exports and checks the ONNX files is not the processor: see labkit.clip.prepare);
  f. one versus two processors in the consumer group;
  g. the text tower: embedding 1,000 custom labels in PyTorch and in what the processor runs,
     and the speed-up from trimming tokens;
  h. OCR beside CLIP (when LABKIT_TASKS has ocr): the OCR task alone on rendered-text cards and on
     photos (and how many cards it read exactly), then the pipeline with one OCR processor;
  i. the history's sink: requests + results + embeddings written to PostgreSQL, beside (b)'s throughput;
  j. vector search over 100k and 1M synthetic 512-d vectors: exact vs pgvector HNSW, p50/p99 and recall@10;
  k. on Apache Kafka with three or more brokers (--engine kafka --brokers 3): the failover time, from a
     broker's SIGKILL (and from its clean shutdown) to the first acknowledged produce to a partition it led;
  l. on Apache Kafka: exactly-once (LABKIT_EXACTLY_ONCE, a transaction per batch) against (b)'s at-least-once run;
  m. the CPU budget of every saturated run (b, f, h, l): milliseconds of CPU per image of each process — load
     generator, web app, broker, the processor's decode / inference / Kafka client / loop, sink, database —
     read from the OS (:mod:`.cpu_budget`).
Everything runs on this machine: one broker (of the engine --engine names) and web app for the run, and real processor
processes, started afresh for each measurement, beside a history sink (:mod:`.pipeline`).
PyTorch is imported only by the functions that measure it (:func:`run_bench`, the tower and
text-tower sections), so ``labkit load`` and the notebooks that use :mod:`.batching` or
:mod:`.load` never pay for it.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..clip import BACKENDS, build_scorer, load_clip
from ..config import Settings
from ..images import load_rgb
from ..kafka.failover import leader_of, time_failover
from ..samples import sample_photos
from .history import search_benchmark, sink_throughput
from .images import image_sets
from .load import LoadResult
from .ocr import ocr_alone, text_images
from .pipeline import BenchPipeline, Processors, processor_threads
from .report import print_report, save_plot
from .text import text_tower_speed, thousand_labels, trimmed_text_tower
from .tower import tower_throughput


@dataclass
class BenchOptions:
    """What to measure; ``quick`` shrinks every section to a smoke test."""

    uploads: int = 500
    light_uploads: int = 100
    ocr_images: int = 24  # rendered-text cards and photos, each, for (h)
    concurrency: int = 32
    tower_batches: list[int] = field(default_factory=lambda: [1, 8])
    curve_batches: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    backends: list[str] = field(default_factory=lambda: list(BACKENDS))
    search_sizes: list[int] = field(default_factory=lambda: [100_000, 1_000_000])
    sink_requests: int = 2000
    photos: Path | None = None
    out: Path = Path("bench-results")
    quick: bool = False

    def shrink(self) -> None:
        self.uploads, self.light_uploads, self.concurrency, self.ocr_images = 16, 8, 8, 4
        self.tower_batches, self.curve_batches = [1, 4], [1, 4]
        self.search_sizes, self.sink_requests = [2000], 60


def _summary(result: LoadResult) -> dict:
    return {
        "uploads": result.uploads,
        "seconds": round(result.seconds, 2),
        "img_per_s": round(result.img_per_s, 2),
        "p50_ms": round(result.percentile(50), 1),
        "p95_ms": round(result.percentile(95), 1),
        "p99_ms": round(result.percentile(99), 1),
    }


def _budget(run: str, result: LoadResult) -> dict:
    """(m): one saturated run's CPU milliseconds per image, part by part, and its throughput."""
    assert result.cpu_ms is not None  # every run of the bench's pipeline is measured
    return {"run": run, "img_per_s": round(result.img_per_s, 2), **result.cpu_ms}


def _memory_row(pipe: Processors, images: list[bytes], uploads: int, options: BenchOptions) -> dict:
    """(e): one fresh processor's peak and steady memory after a short saturated run."""
    backend = pipe.stack.settings.backend
    result = pipe.load(images, uploads, options.concurrency, f"e. {backend}")
    return {
        "backend": backend,
        "peak_rss_mb": round(pipe.rss_mb("VmHWM"), 1),
        "steady_rss_mb": round(pipe.rss_mb("VmRSS"), 1),
        "img_per_s": round(result.img_per_s, 2),
    }


def _decide_ahead(settings: Settings, backends: set[str], thread_counts: set[int]) -> None:
    """Write the backend verdict where it is missing.

    It is the verdict a processor would otherwise reach in a PyTorch child (see labkit.clip.prepare).
    """
    import torch

    from ..clip.artifacts import Decision, settings_folder
    from ..clip.prepare import TORCH_FREE_CANDIDATES, decide

    threads_before = torch.get_num_threads()
    try:
        for backend in sorted(backends & set(TORCH_FREE_CANDIDATES)):
            wanted = settings.model_copy(update={"backend": backend})
            folder = settings_folder(wanted)
            for threads in sorted(thread_counts):
                if Decision.read(folder, backend, threads, settings.backend_memory_mb) is None:
                    decide(wanted, threads).write(folder, threads)
    finally:
        torch.set_num_threads(threads_before)


def run_bench(settings: Settings, options: BenchOptions) -> dict:
    """Run every section; returns the report (also written as JSON + PNG under ``options.out``)."""
    import torch

    from ..clip import ClipScorer, choose_tower
    from ..clip.backends import rank_backends
    from ..clip.footprint import serving_footprint_mb

    if options.quick:
        options.shrink()
    photo_paths = sorted(options.photos.glob("*.jpg")) if options.photos else list(sample_photos().values())
    if not photo_paths:
        raise ValueError(f"no *.jpg photos in {options.photos}")
    report: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
        "model": None,
        "options": {k: str(v) for k, v in asdict(options).items()},
    }

    # (a) the model alone, in this process.
    clip = load_clip(settings)
    report["model"] = clip.model_id
    scorer = ClipScorer(clip)
    pixels = torch.stack([scorer.preprocess(load_rgb(p.read_bytes())) for p in photo_paths[:16]])
    with tqdm(total=len(options.backends) * len(options.tower_batches), desc="a. image tower", unit="run") as bar:
        report["tower"] = tower_throughput(
            clip,
            pixels,
            options.tower_batches,
            options.backends,
            runs=3 if options.quick else 5,
            cache_dir=settings.onnx_cache_dir,
            progress=bar,
        )
    # The backend the pipeline runs: the one asked for, or what `auto` picks (as a processor would).
    if settings.backend == "auto":
        threads = torch.get_num_threads()
        tower, candidates = rank_backends(
            clip,
            pixels[:8],
            scorer.label_embeddings(),
            settings.onnx_cache_dir,
            footprint=lambda backend: serving_footprint_mb(settings, backend, threads),
            memory_budget_mb=settings.backend_memory_mb,
            measure_all=True,  # every candidate's memory, to show why
        )
        report["backend_choice"] = [asdict(candidate) for candidate in candidates]
    else:
        tower = choose_tower(clip, settings.backend, pixels[:8], scorer.label_embeddings(), settings.onnx_cache_dir)
        report["backend_choice"] = [{"name": tower.name, "img_per_s": None, "verdict": "asked for (LABKIT_BACKEND)"}]
    best = tower.name
    report["best_backend"] = best
    batch = settings.max_batch_size
    raw = {(r["backend"], r["batch"]): r["img_per_s"] for r in report["tower"]}
    if (best, batch) not in raw:
        extra = tower_throughput(clip, pixels, [batch], [best], runs=3, cache_dir=settings.onnx_cache_dir)
        raw[(best, batch)] = next(r["img_per_s"] for r in extra if r["backend"] == best)
    labels = thousand_labels()[: 100 if options.quick else 1000]
    with tqdm(total=2, desc="g. text tower", unit="scorer") as bar:
        report["text"] = [
            {**text_tower_speed(scorer, labels, "PyTorch fp32, trimmed"), **trimmed_text_tower(scorer, labels)}
        ]
        bar.update(1)
        served = build_scorer(settings.model_copy(update={"backend": best}))  # what a processor runs
        report["text"].append(
            {
                **text_tower_speed(served, labels, f"processor ({type(served).__name__}, {served.backend})"),
                "trim_speedup": None,
                "trim_min_cosine": None,
            }
        )
        bar.update(1)
    del scorer, clip, served

    images = image_sets(photo_paths, large_count=2 if options.quick else 8)
    # What each processor below would decide in a PyTorch child as it starts, decided here once while
    # PyTorch is loaded anyway: shorter start-ups, and nothing that is measured changes.
    _decide_ahead(settings, {*options.backends, best}, {processor_threads(settings, n) for n in (1, 2)})

    # (h) the OCR task alone, in this process, before any processor runs: cards with known text, and photos.
    ocr_sets: dict[str, list[bytes]] = {}
    if "ocr" in settings.enabled_tasks:
        cards = text_images(options.ocr_images)
        ocr_sets = {"text": [card for card, _ in cards], "224px": images["224px"][: options.ocr_images]}
        with tqdm(total=1, desc="h. OCR alone", unit="run") as bar:
            report["ocr"] = ocr_alone(settings, ocr_sets, [text for _, text in cards], runs=1 if options.quick else 3)
            bar.update(1)

    # One broker and web app for the run; each measurement starts, then stops, the processors it
    # measures, so only they are in the group while it runs.
    report["pipeline"], report["batch_curve"], report["cpu_budget"] = [], [], []
    rss: dict[str, dict] = {}
    with BenchPipeline(settings) as pipeline:
        # (d) the batch-versus-real-time curve.
        for max_batch in options.curve_batches:
            with pipeline.processors(best, max_batch) as pipe:
                pipe.load(images["224px"], 4, 4, "warm-up")
                result = pipe.load(
                    images["224px"], max(options.uploads // 2, 8), options.concurrency, f"d. max batch {max_batch}"
                )
            report["batch_curve"].append({"max_batch": max_batch, **_summary(result)})

        # (e) processor memory per backend: a short saturated run (224 px) on a fresh processor each;
        # then (b) + (c) on the best backend's processor, warmed up, at the configured batch limit.
        for backend in [b for b in options.backends if b != best] + [best]:
            with pipeline.processors(backend, batch) as pipe:
                if backend in options.backends:
                    rss[backend] = _memory_row(pipe, images["224px"], max(options.uploads // 5, 8), options)
                if backend != best:
                    continue
                pipe.load(images["224px"], min(8, options.uploads), 4, "warm-up")
                light = pipe.load(images["224px"], options.light_uploads, 1, "c. light load")
                for name, payload in images.items():
                    result = pipe.load(payload, options.uploads, options.concurrency, f"b. saturated {name}")
                    row = {
                        "images": name,
                        "backend": best,
                        "max_batch": batch,
                        **_summary(result),
                        "raw_img_per_s": raw[(best, batch)],
                        "ratio_to_raw": float(f"{result.img_per_s / raw[(best, batch)]:.3g}"),
                    }
                    report["pipeline"].append(row)
                    report["cpu_budget"].append(_budget(f"b. {name}", result))

        # (f) two processors in the group (one is (b)'s 224 px run above). Last: on the lab's broker
        # (Tansu), once two members had left a group one after the other, the next one never got partitions.
        with pipeline.processors(best, batch, count=2) as pipe:
            pipe.load(images["224px"], 8, 4, "warm-up")
            two = pipe.load(images["224px"], options.uploads, options.concurrency, "f. two processors")
            report["cpu_budget"].append(_budget("f. 224px, two processors", two))

        # (h) one OCR processor, in its own group, on the same images as OCR alone.
        if ocr_sets:
            with pipeline.processors(best, batch, task="ocr") as pipe:
                pipe.load(ocr_sets["text"], 2, 2, "warm-up")
                for row in report["ocr"]:
                    uploads = max(options.uploads // 5, 2 * options.ocr_images)
                    result = pipe.load(ocr_sets[row["images"]], uploads, options.concurrency, f"h. OCR {row['images']}")
                    report["cpu_budget"].append(_budget(f"h. OCR {row['images']}", result))
                    alone = row.pop("img_per_s")  # the row's img_per_s is the pipeline's from here on
                    ratio = float(f"{result.img_per_s / alone:.3g}")
                    row.update(alone_img_per_s=alone, **_summary(result), ratio_to_alone=ratio)
        # (k) failover, on a cluster of three or more Apache Kafka brokers.
        cluster = pipeline.base.broker
        if settings.engine == "kafka" and settings.brokers >= 3 and cluster is not None:
            with tqdm(total=2, desc="k. failover", unit="broker") as bar:
                report["failover"] = []
                for how in ("kill", "stop"):
                    node = leader_of(pipeline.settings, pipeline.settings.requests_topic, 0)
                    seconds = time_failover(pipeline.settings, cluster, node, how)
                    report["failover"].append({"broker": node, "how": how, "seconds": round(seconds, 2)})
                    bar.update(1)
        # (l) what exactly-once costs: (b)'s saturated 224 px run again, each batch in a transaction.
        if settings.engine == "kafka":
            with pipeline.processors(best, batch, exactly_once=True) as pipe:
                pipe.load(images["224px"], min(8, options.uploads), 4, "warm-up")
                once = pipe.load(images["224px"], options.uploads, options.concurrency, "l. exactly-once")
                report["cpu_budget"].append(_budget("l. 224px, exactly-once", once))
            at_least_once = report["pipeline"][0]["img_per_s"]
            report["exactly_once"] = {
                **_summary(once),
                "at_least_once_img_per_s": at_least_once,
                "ratio": float(f"{once.img_per_s / at_least_once:.3g}"),
            }
        # (i) the sink, on the run's broker, beside the pipeline's saturated throughput.
        with tqdm(total=1, desc="i. sink", unit="run") as bar:
            sink = sink_throughput(pipeline.settings, images["224px"], options.sink_requests)
            clip_rate = report["pipeline"][0]["img_per_s"]
            report["sink"] = {
                **sink,
                "pipeline_img_per_s": clip_rate,
                "ratio": round(sink["requests_per_s"] / clip_rate, 2),
            }
            bar.update(1)
    # (j) vector search, exact vs HNSW, in a throw-away embedded PostgreSQL.
    with tqdm(total=1, desc=f"j. search {options.search_sizes}", unit="run") as bar:
        report["search"] = search_benchmark(options.search_sizes, queries=20 if options.quick else 100)
        bar.update(1)
    report["rss"] = [rss[backend] for backend in options.backends]
    report["latency"] = {
        "light": _summary(light),
        "saturated": {k: v for k, v in report["pipeline"][0].items() if k.startswith("p") or k == "img_per_s"},
    }
    keep = ("img_per_s", "p50_ms", "p95_ms", "p99_ms")
    report["scaling"] = [
        {"processors": 1, **{k: v for k, v in report["pipeline"][0].items() if k in keep}},
        {"processors": 2, **{k: v for k, v in _summary(two).items() if k in keep}},
    ]

    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "bench.json").write_text(json.dumps(report, indent=2))
    save_plot(report, options.out / "bench.png")
    print_report(report)
    print(f"\nwrote {options.out / 'bench.json'} and {options.out / 'bench.png'}")
    return report
