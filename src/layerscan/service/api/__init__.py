"""The HTTP side of the service: Anchore's external API, /metrics and the web page (see app.py)."""

from .app import create_app

__all__ = ["create_app"]
