"""The web app: FastAPI routes, the upload page, and the bridge from Kafka to WebSockets.

Its modules, from the rules an upload meets first to the app that wires them together:

    contract        the HTTP contract: the one error model, the ids and texts routes take, each answer's model
    errors          why the app refuses an upload, as exceptions, and the one handler that answers them
    limits          upload size limits, and the form read into a typed upload
    security        a Content-Security-Policy, same-origin checks, the optional API token
    views           what the API and the WebSocket show of an upload: each task's result, and its state
    hub             the app's link to Kafka and the one owner of its pending uploads
    history_api     the history over HTTP: newest first, search, "find similar", duplicates, thumbnails
    metrics         the app's Prometheus metrics (``GET /metrics``)
    asyncapi        the AsyncAPI 3 document of the WebSocket and the Kafka topics (``GET /asyncapi.json``)
    app             the FastAPI app: upload an image, 202 at once, each task's result over a WebSocket
"""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
