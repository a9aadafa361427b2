"""Notebook widgets: upload photos into the pipeline and watch their results fill a live table.

Thread rule for ipywidgets: the widget is *displayed* from the kernel's main thread (the cell
that creates it); the background thread only changes widget *values* (``html.value = ...``),
which ipykernel sends to the browser safely. Never ``with output:`` from a thread — that output
lands in whichever cell happens to be running.
"""

from __future__ import annotations

import threading

import ipywidgets as widgets

from .client import LabClient
from .errors import BadImage


class LiveResults(widgets.VBox):
    """An upload button plus a table of this client's results, refreshed while results arrive.

    ``LiveResults(lab)`` in a cell shows it; ``.close()`` stops its refresh thread.
    """

    def __init__(self, lab: LabClient, refresh_s: float = 0.5):
        self.lab = lab
        self.upload = widgets.FileUpload(accept="image/*", multiple=True, description="Upload photos")
        self.status = widgets.HTML("Choose one or more photos: each is sent to Kafka at once.")
        self.table = widgets.HTML()
        super().__init__([self.upload, self.status, self.table])
        self.upload.observe(self._on_upload, names="value")
        self._stop = threading.Event()
        self._shown = -1
        self._thread = threading.Thread(target=self._refresh, args=(refresh_s,), name="labkit-live-results",
                                        daemon=True)
        self._thread.start()

    def _on_upload(self, change) -> None:
        sent, refused = 0, []
        for item in change["new"]:
            try:
                self.lab.submit(bytes(item["content"]), item["name"])
                sent += 1
            except BadImage as exc:
                refused.append(f"{item['name']}: {exc}")
        self.status.value = f"Sent {sent} image(s) to Kafka." + "".join(f"<br>⚠ {r}" for r in refused)

    def _refresh(self, every: float) -> None:
        while not self._stop.wait(every):
            count = len(self.lab.results)
            if count != self._shown:  # redraw only when something new arrived
                self._shown = count
                frame = self.lab.results_frame()
                self.table.value = frame.drop(columns=["id", "model"]).to_html(index=False) if count else ""

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        super().close()
