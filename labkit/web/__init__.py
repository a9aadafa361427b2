"""The web app: FastAPI routes, the upload page, and the bridge from Kafka to WebSockets."""

from .app import create_app, serve

__all__ = ["create_app", "serve"]
