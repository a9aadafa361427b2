"""Upload size limits, and the form read into a typed :class:`Upload`.

The limits are enforced before and while the body streams in, so an oversize upload is refused unread.

A framework that parses a multipart form before calling your endpoint has already read (and
spooled to disk) the whole body by the time the endpoint could look at its size: a 5 GB upload
costs 5 GB of disk and bandwidth before its 413. Here the endpoint reads the body itself, after
every check that needs no body (origin, token, backlog), and each size check raises
:class:`~labkit.web.errors.TooLarge` (→ 413):

* a ``Content-Length`` over the limit → 413 before a byte is read (:func:`read_upload`; the
  connection is closed, so the rest is never read either);
* no ``Content-Length`` (chunked upload) → the :class:`UploadSizeLimit` middleware counts bytes
  as they arrive and cuts the request off with 413 at the first chunk past the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from .contract import odd_characters
from .errors import BadFilename, BadLabels, BadTasks, NoImage, NotAForm, TooLarge

#: Room for the multipart envelope (boundaries, part headers, the labels and tasks fields) around the file.
ENVELOPE_BYTES = 64 * 1024


#: How many ``tasks`` fields a form may repeat (``validate_tasks`` allows up to 10 names in all).
MAX_TASK_FIELDS = 10


def too_large_message(limit: int) -> str:
    return f"The upload is over the {limit / (1024 * 1024):g} MB limit; send a smaller image."


class UploadSizeLimit:
    """Cut a POST body to ``path`` off with 413 as soon as more than the limit has arrived.

    The limit is ``max_bytes`` plus the multipart envelope.
    """

    def __init__(self, app, path: str, max_bytes: int):
        self.app, self.path, self.limit = app, path, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit + ENVELOPE_BYTES:  # raised inside the endpoint's form parsing: 413
                    raise TooLarge(too_large_message(self.limit))
            return message

        return await self.app(scope, counting_receive, send)


@dataclass(frozen=True)
class Upload:
    """One upload as the form sent it.

    The file's bytes, its name (a label only), the user's own labels and the tasks it names, if any.
    """

    data: bytes
    filename: str | None
    labels: list[str] | None
    tasks: list[str] | None = None  # None: every enabled task


async def read_upload(request: Request, max_bytes: int) -> Upload:
    """Read the multipart ``file`` (+ optional ``labels`` and ``tasks``) with tight limits.

    ``labels`` are comma- or newline-separated; ``tasks`` are repeated or comma-separated.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes + ENVELOPE_BYTES:
        raise TooLarge(too_large_message(max_bytes), close=True)
    try:
        form = await request.form(max_files=1, max_fields=MAX_TASK_FIELDS + 1, max_part_size=64 * 1024)
    except MultiPartException as exc:
        raise NotAForm(f"Send the image as multipart/form-data in a field named 'file' ({exc.message}).") from None
    try:
        file, labels, tasks = form.get("file"), form.get("labels"), form.getlist("tasks")
        if not isinstance(file, UploadFile):
            raise NoImage("No image: send it as multipart/form-data in a field named 'file'.")
        if labels is not None and not isinstance(labels, str):
            raise BadLabels("Labels: send them as text, comma- or newline-separated.")
        if not all(isinstance(task, str) for task in tasks):
            raise BadTasks("Tasks: send each as text (tasks=clip), repeated or comma-separated (tasks=clip,ocr).")
        # Text that Kafka headers, PostgreSQL (no NUL) and the page carry: no control character, no lone surrogate.
        if labels is not None and odd_characters(labels, allowed="\t\n\r"):
            raise BadLabels("Labels: send plain text, comma- or newline-separated, without control characters.")
        if any(odd_characters(str(task)) for task in tasks):
            raise BadTasks("Tasks: send task names (tasks=clip), without control characters.")
        if file.filename and odd_characters(file.filename):
            raise BadFilename("File name: send the file under a name without control characters (or none at all).")
        data = await file.read(max_bytes + 1)
    finally:
        await form.close()
    if len(data) > max_bytes:  # the envelope allowance let a slightly-too-big file through the middleware
        raise TooLarge(too_large_message(max_bytes))
    return Upload(
        data=data,
        filename=Path(file.filename or "").name[:200] or None,  # a label only, never used as a path
        labels=labels.replace("\n", ",").split(",") if labels and labels.strip() else None,
        tasks=[name for task in tasks for name in str(task).split(",")] if tasks else None,
    )
