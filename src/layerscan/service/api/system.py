"""Anchore's service routes: `/`, `/health`, `/version` (public), `/status`, `/system`, `/swagger.json`."""

from __future__ import annotations

import datetime
import json
import socket
from importlib import resources
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ... import __version__
from ..store import WorkerRecord
from .context import ApiContext, context_of

# What Anchore's clients compare against: anchore-cli reads the engine and DB versions from
# /system, and detects the API by swagger.json's info.version.
ENGINE_VERSION = "1.1.0"
API_VERSION = "0.1.20"
DB_SCHEMA_VERSION = "0.0.16"


def ping(request: Request) -> Response:
    return JSONResponse("v1")


def health(request: Request) -> Response:
    return JSONResponse("ok")


def version(request: Request) -> Response:
    return JSONResponse(
        {
            "service": {"version": ENGINE_VERSION},
            "api": {"version": API_VERSION},
            "db": {"schema_version": DB_SCHEMA_VERSION},
            "layerscan": {"version": __version__},
        }
    )


def status(request: Request) -> Response:
    return JSONResponse(_api_status(context_of(request)))


def system(request: Request) -> Response:
    """Service states: this API, and every analyzer (in-process or `layerscan worker`) the store knows."""
    ctx = context_of(request)
    apiext = {
        "hostid": socket.gethostname(),
        "servicename": "apiext",
        "base_url": _base_url(request),
        "status": True,
        "status_message": "available",
        "version": ENGINE_VERSION,
        "service_detail": _api_status(ctx),
    }
    return JSONResponse({"service_states": [apiext, *(_analyzer(w) for w in ctx.store.list_workers())]})


def swagger(request: Request) -> Response:
    doc = json.loads(resources.files(__package__).joinpath("swagger.json").read_text(encoding="utf-8"))
    return JSONResponse(doc)


def _api_status(ctx: ApiContext) -> dict[str, Any]:
    worker = ctx.worker
    return {
        "up": True,
        "available": True,
        "busy": worker is not None and worker.busy() > 0,
        "message": "all good",
        "version": ENGINE_VERSION,
        "db_version": DB_SCHEMA_VERSION,
        "detail": {
            "layerscan_version": __version__,
            "up_since": ctx.started_at.isoformat(),
            "queue": ctx.store.queue_depth(),
            "in_process_analyzer": worker.worker_id if worker is not None else None,
        },
    }


def _analyzer(w: WorkerRecord) -> dict[str, Any]:
    up = w.status == "up"
    detail = {
        "up": up,
        "available": up,
        "busy": w.busy > 0,
        "message": f"{w.busy} of {w.max_threads} analyses running",
        "version": ENGINE_VERSION,
        "db_version": DB_SCHEMA_VERSION,
        "detail": {"last_seen": w.last_seen.astimezone(datetime.UTC).isoformat(), "max_threads": w.max_threads},
    }
    return {
        "hostid": w.worker_id,
        "servicename": "analyzer",
        "base_url": f"http://{w.host}:{w.port}" if w.port else "N/A",
        "status": up,
        "status_message": "available" if up else "no heartbeat",
        "version": ENGINE_VERSION,
        "service_detail": detail,
    }


def _base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


ROUTES = [
    Route("/", ping, methods=["GET"]),
    Route("/health", health, methods=["GET"]),
    Route("/version", version, methods=["GET"]),
    Route("/status", status, methods=["GET"]),
    Route("/system", system, methods=["GET"]),
    Route("/swagger.json", swagger, methods=["GET"]),
]
