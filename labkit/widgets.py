"""Notebook widgets: the pipeline, Kafka itself and the services' logs, live.

Upload photos into the pipeline, watch results fill a live table, watch Kafka itself (offsets,
lag, group members) change, and read the services' logs live.

Thread rule for ipywidgets: the widget is *displayed* from the kernel's main thread (the cell
that creates it); the background thread only changes widget *values* (``html.value = ...``),
which ipykernel sends to the browser safely. Never ``with output:`` from a thread — that output
lands in whichever cell happens to be running.
"""

from __future__ import annotations

import io
import time
from collections import deque
from html import escape

import ipywidgets as widgets

from ._logging import read_service_logs
from ._loop import ThreadLoop
from .config import Settings
from .errors import BadImage, LabkitError
from .kafka.admin import describe_topics, group_assignments
from .lab_client import LabClient


class _Refreshing(widgets.VBox):
    """A box whose ``refresh()`` runs every ``every`` seconds on a background thread until ``close()``."""

    def __init__(self, children, every: float, name: str):
        super().__init__(children)
        self._loop = ThreadLoop(name, self.refresh, every=every, what_failed=f"{name}: refresh failed").start()

    def refresh(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the background thread (also when the kernel restarts: it is a daemon thread), then the widget."""
        self._loop.stop(5)
        super().close()


class LiveResults(_Refreshing):
    """An upload button, a table of this client's results and a plot of CLIP's latency.

    The table has a row per photo and a column per task; all of it is refreshed as results arrive.

    ``LiveResults(lab)`` in a cell shows it; ``send(...)`` does what the button does, from code;
    ``.close()`` stops its refresh thread.
    """

    def __init__(self, lab: LabClient, refresh_s: float = 0.5, plot: bool = True):
        self.lab = lab
        self.upload = widgets.FileUpload(accept="image/*", multiple=True, description="Upload photos")
        self.status = widgets.HTML("Choose one or more photos: each is sent to Kafka at once.")
        self.table = widgets.HTML()
        self.plot = widgets.Image(format="png") if plot else None
        self._shown = -1
        super().__init__(
            [self.upload, self.status, self.table] + ([self.plot] if plot else []), refresh_s, "labkit-live-results"
        )
        self.upload.observe(
            lambda change: self.send({f["name"]: bytes(f["content"]) for f in change["new"]}), names="value"
        )

    def send(self, files: dict) -> list[str]:
        """Send ``{filename: image bytes or path}`` into the pipeline; returns the request ids Kafka accepted.

        Files that are not acceptable images are listed in the widget with the reason; the
        rest are still sent.
        """
        ids, refused = [], []
        for name, content in files.items():
            try:
                ids += self.lab.submit_many([(content, name)])
            except BadImage as exc:
                refused.append(f"{escape(name)}: {escape(str(exc))}")
        self.status.value = f"Sent {len(ids)} image(s) to Kafka." + "".join(f"<br>⚠ {r}" for r in refused)
        return ids

    def refresh(self) -> None:
        count = len(self.lab.results)
        if count == self._shown:  # redraw only when something new arrived
            return
        self._shown = count
        frame = self.lab.results_frame()
        self.table.value = frame.drop(columns=["request_id", "model"]).to_html(index=False) if count else ""
        timed = frame.dropna(subset=["total ms"]) if count else frame  # CLIP's latency; rows without it yet wait
        if self.plot is not None and len(timed):
            self.plot.value = _line_png(
                list(zip(timed["arrived s"], timed["total ms"])),
                "seconds (CLIP result arrived)",
                "upload → result (ms)",
            )


class KafkaInspector(_Refreshing):
    """Topics, partitions, end offsets, a group's committed offsets, lag and members, and lag over time.

    ``KafkaInspector(settings)`` watches the pipeline's topics and the processors' group;
    ``topics=`` / ``group_id=`` watch others. ``snapshot()`` returns the latest reading (what
    the table shows) for code and tests; ``history`` holds (seconds, total lag) pairs.
    """

    def __init__(
        self,
        settings: Settings,
        topics: list[str] | None = None,
        group_id: str | None = None,
        refresh_s: float = 1.0,
        plot: bool = True,
    ):
        self.settings, self.topics = settings, topics or [settings.requests_topic]
        self.group_id = group_id or settings.group_id
        self.table, self.members = widgets.HTML("reading…"), widgets.HTML()
        self.plot = widgets.Image(format="png") if plot else None
        self.history: deque[tuple[float, int]] = deque(maxlen=600)
        self._started = time.monotonic()
        self._latest: tuple[list, dict | None] = ([], None)
        self.refresh()  # the first reading is there when the cell shows the widget
        super().__init__([self.table, self.members] + ([self.plot] if plot else []), refresh_s, "labkit-inspector")

    def snapshot(self):
        """The latest reading: a pandas table of partitions, and {member: [(topic, partition), …]} or None.

        The members are None when the broker did not say (:func:`~labkit.kafka.admin.group_assignments`).
        """
        import pandas as pd

        rows, members = self._latest
        return pd.DataFrame([vars(r) | {"lag": r.lag} for r in rows]), members

    def refresh(self) -> None:
        try:
            rows = describe_topics(self.settings, self.topics, self.group_id)
            members = group_assignments(self.settings, self.group_id)
        except LabkitError as exc:  # e.g. the broker stopped: say so, keep trying
            self.table.value = f"<b>⚠ {escape(str(exc))}</b>"
            return
        self._latest = (rows, members)
        table, _ = self.snapshot()
        self.table.value = table.to_html(index=False, na_rep="–")
        if members is None:
            lines = [
                f"<b>group {escape(self.group_id)}</b>: members not reported by this broker "
                "(the embedded broker may not answer DescribeGroups; Apache Kafka does)"
            ]
        else:
            lines = [f"<b>group {escape(self.group_id)}</b>: {len(members)} member(s)"] + [
                f"{escape(name)} → {', '.join(f'{t}[{p}]' for t, p in owned) or '<i>idle: no partition left</i>'}"
                for name, owned in sorted(members.items())
            ]
        self.members.value = "<br>".join(lines)
        # Records not yet processed. A group that has committed nothing yet will start at the
        # beginning of the log (labkit's auto.offset.reset=earliest), so all of it is waiting.
        waiting = sum(r.lag if r.lag is not None else r.high - r.low for r in rows)
        self.history.append((time.monotonic() - self._started, waiting))
        if self.plot is not None:
            self.plot.value = _line_png(self.history, "seconds", "records not yet processed (lag)")


def log_lines(
    settings: Settings, contains: str | None = None, services: list[str] | None = None, last: int | None = 200
) -> list[str]:
    """The running services' log lines, oldest first: ``"<time> <service> | <line>"``.

    ``labkit up`` / ``labkit lab`` write them to ``settings.service_log_dir``, one file per
    service (``web``, ``processor``, ``jupyter``, and ``labkit`` for the stack's own lines).
    ``contains`` keeps lines with that text (a request id, say); ``services`` only those services
    (``["processor"]`` also matches ``processor2``); ``last`` the newest that many (``None``: all).
    """
    return read_service_logs(settings.service_log_dir, contains, services, last)


class LogView(_Refreshing):
    """The services' newest log lines, live, with a filter box (type a request id to follow one upload).

    ``LogView(settings)`` in a cell shows it; ``lines()`` returns what it shows; ``.close()``
    stops its refresh thread.
    """

    def __init__(
        self,
        settings: Settings,
        contains: str = "",
        services: list[str] | None = None,
        last: int = 25,
        refresh_s: float = 1.0,
    ):
        self.settings, self.services, self.last = settings, services, last
        self.filter = widgets.Text(value=contains, placeholder="request id, or any text", description="filter")
        self.view = widgets.HTML()
        self.refresh()
        self.filter.observe(lambda change: self.refresh(), names="value")
        super().__init__([self.filter, self.view], refresh_s, "labkit-log-view")

    def lines(self) -> list[str]:
        """The lines the view shows now (those containing the filter's text, newest ``last``)."""
        return log_lines(self.settings, self.filter.value or None, self.services, self.last)

    def refresh(self) -> None:
        lines = self.lines()
        folder = self.settings.service_log_dir
        shown = escape("\n".join(lines)) or (
            f"no matching lines in {escape(str(folder))} yet: is `labkit up` or `labkit lab` running with "
            f"web port {self.settings.web_port} (or LABKIT_LOG_DIR set to its folder)?"
        )
        self.view.value = f"<pre style='font-size: 11px; white-space: pre-wrap; margin: 0'>{shown}</pre>"


def _line_png(points, xlabel: str, ylabel: str) -> bytes:
    """A small line plot as PNG bytes (rendered off-screen: safe from a background thread)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 2.2), dpi=80)
    axes = figure.add_subplot()
    xs, ys = zip(*points) if points else ((), ())
    axes.plot(xs, ys, marker=".")
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_ylim(bottom=0)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
