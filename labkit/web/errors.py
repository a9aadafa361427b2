"""Why the web app refuses an upload, as exceptions, and the one handler that answers them.

The handler turns each into its HTTP status and counts it by reason.

A route, the hub or a check just raises: :class:`Refused` subclasses for the web's own reasons
(403, 401, 429, 413, 503, …) and labkit's :class:`~labkit.errors.BadImage` (415) for bytes that
are not an image. :func:`install_handlers` answers every one of them with
``{"detail": "<what to do>"}``, its headers (``Retry-After``, ``WWW-Authenticate``) and a
count in ``labkit_uploads_total{outcome=<reason>}``, so no route counts a rejection by hand.
A path or query parameter that breaks its declared constraints (:mod:`labkit.web.contract`) is
answered 422 in the same shape, by :func:`invalid_parameter`: one sentence, never FastAPI's list.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from ..errors import BadImage, LabkitError


class Refused(LabkitError):
    """An upload refused with ``status``; ``reason`` labels it in metrics, ``str()`` says what to do."""

    status = 400
    reason = "bad_request"

    def __init__(self, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.headers = headers or {}


class Forbidden(Refused):
    """Another web site's page sent it (403)."""

    status, reason = 403, "forbidden"


class Unauthorized(Refused):
    """The API token is missing or wrong (401)."""

    status, reason = 401, "unauthorized"

    def __init__(self, message: str):
        super().__init__(message, {"WWW-Authenticate": "Bearer"})


class NotAForm(Refused):
    """The body is not a multipart form this app can read (400)."""

    status, reason = 400, "bad_request"


class NoImage(Refused):
    """The form has no ``file`` field (422)."""

    status, reason = 422, "bad_request"


class BadLabels(Refused):
    """The ``labels`` field is not acceptable text (422)."""

    status, reason = 422, "bad_labels"


class BadFilename(Refused):
    """The file's name holds a control character or a lone surrogate (422)."""

    status, reason = 422, "bad_filename"


class BadTasks(Refused):
    """The ``tasks`` field names no task, or one this pipeline does not run (422)."""

    status, reason = 422, "bad_tasks"


class TooLarge(Refused):
    """The upload is over the size limit (413); ``close`` ends the connection when the body was never read."""

    status, reason = 413, "too_large"

    def __init__(self, message: str, close: bool = False):
        super().__init__(message, {"Connection": "close"} if close else None)


class Backlogged(Refused):
    """Too many uploads are already waiting for results here (429, with ``Retry-After``)."""

    status, reason = 429, "backpressure"

    def __init__(self, waiting: int, retry_after_s: int):
        super().__init__(
            f"{waiting} images are already waiting for results here; try again in {retry_after_s} s.",
            {"Retry-After": str(retry_after_s)},
        )


class KafkaUnavailable(Refused):
    """Kafka did not take the image (503, with ``Retry-After``)."""

    status, reason = 503, "kafka_unavailable"

    def __init__(self, message: str):
        super().__init__(message, {"Retry-After": "5"})


#: labkit's own errors as an upload meets them: (status, reason); the message is the error's own.
LABKIT_ERRORS: dict[type[LabkitError], tuple[int, str]] = {BadImage: (415, "bad_image")}


def install_handlers(app: FastAPI, count: Callable[[str], None]) -> None:
    """Answer every :class:`Refused` and every error in :data:`LABKIT_ERRORS` raised by a route.

    Each is counted with ``count(reason)``.
    """

    async def refuse(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, Refused):
            status, reason, headers = exc.status, exc.reason, exc.headers
        else:
            status, reason = next(known for kind, known in LABKIT_ERRORS.items() if isinstance(exc, kind))
            headers = {}
        count(reason)
        return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)

    handled: tuple[type[LabkitError], ...] = (Refused, *LABKIT_ERRORS)
    for error in handled:
        app.add_exception_handler(error, refuse)
    app.add_exception_handler(RequestValidationError, invalid_parameter)
    app.add_exception_handler(HTTPException, no_such_route)


#: Starlette's bare words for a request no route takes, as sentences that say what to do.
NO_ROUTE = {
    "Not Found": "No such route: the API's routes are listed at /docs (an id in a path is 32 hex characters).",
    "Method Not Allowed": "This route does not take that method: see /docs for the ones it takes.",
}


async def no_such_route(request: Request, exc: Exception) -> Response:
    """An HTTP error as ``{"detail": ...}``; a request no route takes is told where the routes are listed."""
    assert isinstance(exc, HTTPException)
    if exc.detail in NO_ROUTE:
        exc = HTTPException(exc.status_code, NO_ROUTE[exc.detail], exc.headers)
    return await http_exception_handler(request, exc)


def _wanted(request: Request, name: str) -> str | None:
    """What the route's parameter ``name`` should be, as declared (None: not described)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    for param in (*getattr(dependant, "path_params", ()), *getattr(dependant, "query_params", ())):
        if param.alias == name:
            return param.field_info.description
    return None


async def invalid_parameter(request: Request, exc: Exception) -> JSONResponse:
    """422 ``{"detail": "<sentence>"}`` for the first unacceptable parameter: which, why, what to send."""
    assert isinstance(exc, RequestValidationError)
    error = exc.errors()[0]
    where, name = (error["loc"][0], error["loc"][-1]) if error["loc"] else ("request", "?")
    why = str(error["msg"]).removeprefix("Value error, ")
    wanted = _wanted(request, str(name))
    send = f"send {wanted}" if wanted else "see /docs for what it takes"
    return JSONResponse({"detail": f"The {where} parameter `{name}` is not acceptable ({why}): {send}."}, 422)
