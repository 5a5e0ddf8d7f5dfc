"""The API app: Anchore's external API (the subset anchore-cli uses), Harbor's scanner adapter API
(/api/v1, harbor.py), /metrics and the web page.

    create_app(config, store, worker=None) -> an ASGI app for uvicorn

Requests without a `/v1` prefix are served as if they had it, as Anchore does, so
`/images` and `/v1/images` are the same route. Then Basic auth (auth.py), then the routes.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ...config import Config
from ..auth import BasicAuth, users_of
from ..store import Store
from ..worker import AnalyzerWorker
from . import harbor, imageimport, images, metrics, system, ui
from .context import ApiContext
from .errors import HANDLERS

PREFIX = "/v1"


class StripV1:
    """ASGI middleware: `/v1/x` is served as `/x` (and `/v1` as `/`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path == PREFIX or path.startswith(PREFIX + "/"):
                scope = dict(scope, path=path[len(PREFIX) :] or "/")
        await self.app(scope, receive, send)


def create_app(config: Config, store: Store, worker: AnalyzerWorker | None = None) -> ASGIApp:
    routes = [*system.ROUTES, *images.ROUTES, *imageimport.ROUTES, *metrics.ROUTES, *ui.ROUTES, *harbor.ROUTES]
    app = Starlette(routes=routes, exception_handlers=HANDLERS)
    app.state.context = ApiContext(config, store, worker)
    app.state.metrics = metrics.state_registry(store, config)
    return StripV1(BasicAuth(app, users_of(config), required=config.service.apiext_require_auth))
