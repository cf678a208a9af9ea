"""The agent HTTP API (FastAPI): ``create_app(settings)`` builds it; ``bugdesk serve`` runs it."""

from bugdesk.api.app import create_app

__all__ = ["create_app"]
