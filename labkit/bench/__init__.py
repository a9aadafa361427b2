"""``labkit bench``: measure the model alone and the whole pipeline in one run, and print one as a ratio of the other.

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
     and the speed-up from trimming tokens.
Everything runs on this machine: an embedded broker, real processor and web-app processes.
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

from ..broker import free_port
from ..clip import BACKENDS, build_scorer, load_clip
from ..config import Settings
from ..errors import LabkitError
from ..images import load_rgb
from ..samples import sample_photos
from ..stack import Stack
from .images import image_sets
from .load import LoadResult, rss_mb, run_load
from .report import print_report, save_plot
from .text import text_tower_speed, thousand_labels, trimmed_text_tower
from .tower import tower_throughput


@dataclass
class BenchOptions:
    """What to measure; ``quick`` shrinks every section to a smoke test."""

    uploads: int = 500
    light_uploads: int = 100
    concurrency: int = 32
    tower_batches: list[int] = field(default_factory=lambda: [1, 8])
    curve_batches: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16])
    backends: list[str] = field(default_factory=lambda: list(BACKENDS))
    photos: Path | None = None
    out: Path = Path("bench-results")
    quick: bool = False

    def shrink(self) -> None:
        self.uploads, self.light_uploads, self.concurrency = 16, 8, 8
        self.tower_batches, self.curve_batches = [1, 4], [1, 4]


def _summary(result: LoadResult) -> dict:
    return {
        "uploads": result.uploads,
        "seconds": round(result.seconds, 2),
        "img_per_s": round(result.img_per_s, 2),
        "p50_ms": round(result.percentile(50), 1),
        "p95_ms": round(result.percentile(95), 1),
        "p99_ms": round(result.percentile(99), 1),
    }


class _Pipeline:
    """A throw-away stack (broker, processors, web app) on free ports with the given processor settings."""

    def __init__(self, settings: Settings, backend: str, max_batch: int, processors: int = 1):
        self.settings = settings.model_copy(
            update={
                "bootstrap": None,
                "broker_port": free_port(),
                "web_port": free_port(),
                "web_host": "127.0.0.1",
                "backend": backend,
                "max_batch_size": max_batch,
            }
        )
        self.stack = Stack(self.settings, web=True, processors=processors, echo=False)

    def __enter__(self) -> "_Pipeline":
        self.stack.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stack.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}"

    def load(self, images: list[bytes], uploads: int, concurrency: int, label: str) -> LoadResult:
        with tqdm(total=uploads, desc=label, unit="img", leave=False) as bar:
            result = run_load(self.url, images, uploads, concurrency, progress=bar)
        if result.lost or result.failed:  # a fast run that dropped work must not look like a fast run
            raise LabkitError(
                f"{label}: {len(result.lost)} upload(s) got no result and {len(result.failed)} failed; "
                "the pipeline is broken, so its timings mean nothing. Look at the stack's log above."
            )
        return result

    def processor_rss_mb(self, field: str) -> float:
        return max(rss_mb(c.process.pid, field) for c in self.stack.children if c.name.startswith("processor"))


def run_bench(settings: Settings, options: BenchOptions) -> dict:
    """Run every section; returns the report (also written as JSON + PNG under ``options.out``)."""
    import torch

    from ..clip import ClipScorer, choose_tower

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
    best = choose_tower(clip, settings.backend, pixels[:8], scorer.label_embeddings(), settings.onnx_cache_dir).name
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

    # (b) + (c): one pipeline with the best backend at the configured batch limit.
    report["pipeline"] = []
    with _Pipeline(settings, best, batch) as pipe:
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
    report["latency"] = {
        "light": _summary(light),
        "saturated": {k: v for k, v in report["pipeline"][0].items() if k.startswith("p") or k == "img_per_s"},
    }

    # (d) the batch-versus-real-time curve.
    report["batch_curve"] = []
    for max_batch in options.curve_batches:
        with _Pipeline(settings, best, max_batch) as pipe:
            pipe.load(images["224px"], 4, 4, "warm-up")
            result = pipe.load(
                images["224px"], max(options.uploads // 2, 8), options.concurrency, f"d. max batch {max_batch}"
            )
        report["batch_curve"].append({"max_batch": max_batch, **_summary(result)})

    # (e) processor memory per backend (a short saturated run each, 224 px).
    report["rss"] = []
    for backend in options.backends:
        with _Pipeline(settings, backend, batch) as pipe:
            result = pipe.load(images["224px"], max(options.uploads // 5, 8), options.concurrency, f"e. {backend}")
            report["rss"].append(
                {
                    "backend": backend,
                    "peak_rss_mb": round(pipe.processor_rss_mb("VmHWM"), 1),
                    "steady_rss_mb": round(pipe.processor_rss_mb("VmRSS"), 1),
                    "img_per_s": round(result.img_per_s, 2),
                }
            )

    # (f) one versus two processors in the group.
    report["scaling"] = [
        {
            "processors": 1,
            **{k: v for k, v in report["pipeline"][0].items() if k in ("img_per_s", "p50_ms", "p95_ms", "p99_ms")},
        }
    ]
    with _Pipeline(settings, best, batch, processors=2) as pipe:
        pipe.load(images["224px"], 8, 4, "warm-up")
        result = pipe.load(images["224px"], options.uploads, options.concurrency, "f. two processors")
    report["scaling"].append(
        {
            "processors": 2,
            **{k: v for k, v in _summary(result).items() if k in ("img_per_s", "p50_ms", "p95_ms", "p99_ms")},
        }
    )

    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "bench.json").write_text(json.dumps(report, indent=2))
    save_plot(report, options.out / "bench.png")
    print_report(report)
    print(f"\nwrote {options.out / 'bench.json'} and {options.out / 'bench.png'}")
    return report
